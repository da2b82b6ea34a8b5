"""The lessons' self-check questions: 2-4 per lesson, answers that follow from the lab itself,
verdicts with explanations, and sentences about the learner's photo."""
from __future__ import annotations

import math

import pytest

from lab import selfcheck
from lab.data.transforms import image_box
from lab.eval import results as evals
from lab.infer import POSE_WEIGHTS, PRETRAINED, PoseLab
from lab.models import graph
from lab.resources import LESSONS


def test_every_lesson_ends_with_two_to_four_questions():
    for f in sorted(LESSONS.glob("0*.md")):
        assert 2 <= len(selfcheck.questions_for(f.name)) <= 4, f.name
    ids = [q.id for q in selfcheck.QUESTIONS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("q", selfcheck.QUESTIONS, ids=lambda q: q.id)
def test_each_question_has_a_right_answer_and_a_wrong_one(q):
    want = q.right()
    if q.kind == "choice":
        assert 0 <= want < len(q.options) and len(q.options) >= 2
        ok, text = selfcheck.check(q, want)
        assert ok and text.startswith("Right.") and len(text) > 20
        wrong = (want + 1) % len(q.options)
        ok, text = selfcheck.check(q, wrong)
        assert not ok and q.options[want] in text
    else:
        assert math.isfinite(want)
        assert selfcheck.check(q, want + q.tolerance)[0]
        ok, text = selfcheck.check(q, want + q.tolerance + 1)
        assert not ok and "the answer is" in text
    assert selfcheck.check(q, None)[0] is False


def test_answers_come_from_the_lab():
    by_id = {q.id: q for q in selfcheck.QUESTIONS}
    q = by_id["l1_stride"]
    assert q.options[q.right()] == str(PoseLab(POSE_WEIGHTS, None).codec.stride)
    assert by_id["l3_edges"].right() == len(graph.edges("tree"))
    reg = evals.check_eval(evals.eval_path(PRETRAINED / "regressor.safetensors"), PRETRAINED / "regressor.safetensors")
    assert by_id["l5_read"].right() == pytest.approx(round(100 * evals.pck_of(reg["result"], "regressor"), 1))


def test_photo_sentences_describe_the_learners_photo(mini):
    models = PoseLab(POSE_WEIGHTS, None)
    crop = mini["val"].images[0]
    pred = models.predict(crop, image_box(crop.shape[1], crop.shape[0]))
    with_photo = [q for q in selfcheck.QUESTIONS if q.on_photo is not None]
    assert len(with_photo) >= 3
    for q in with_photo:
        s = selfcheck.photo_sentence(q, models, pred, "a mini-set crop")
        assert s and s.startswith("On your current photo (a mini-set crop): "), q.id
    assert selfcheck.photo_sentence(with_photo[0], None, None, "") is None
