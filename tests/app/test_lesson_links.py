"""Every "Try this" link of a lesson does what its lesson says it will.

Each link's state is opened the way the app opens it: the link's parameters read by
`lab.app.links` (`ints`, `joint_of`, the model names), the sample photo framed as the app
frames it (the most prominent person, refined), and the interaction computed by `lab.touch`
on the shipped model. Then the claim of the lesson is checked: the joint the label names is
the one hidden or planted, its map collapses, the named joint moves, the edge exists in the
model the link opens.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl

import numpy as np
import pytest
from app_util import framed_box

from lab import touch
from lab.app import links, photos
from lab.app.views import lessons as lesson_view
from lab.data.images import load_image
from lab.infer import FULL_WEIGHTS, POSE_WEIGHTS, SCRATCH_WEIGHTS, PoseLab
from lab.joints import NAMES
from lab.models import graph
from lab.resources import LESSONS

WEIGHTS = {"imagenet": POSE_WEIGHTS, "scratch": SCRATCH_WEIGHTS, "full": FULL_WEIGHTS}
TRY = re.compile(r"^\s*\[(?P<label>Try it:[^\]]+)\]\(/(?P<path>[\w-]+)\?(?P<query>[^)\s]+)\)\s*$", re.M)


def try_links() -> list[tuple[str, str, str, dict]]:
    """(lesson file, label, page path, parameters) of every "Try it: ..." link in lessons/."""
    out = []
    for f in sorted(LESSONS.glob("0*.md")):
        for m in TRY.finditer(f.read_text(encoding="utf-8")):
            out.append((f.name, m["label"], m["path"], dict(parse_qsl(m["query"]))))
    return out


LINKS = try_links()


def named_joints(label: str) -> list[int]:
    """The joints a label names in full ("right wrist"), in the order they appear."""
    found = [(label.find(n), k) for k, n in enumerate(NAMES) if n in label]
    return [k for _, k in sorted(found)]


def claims(lesson: str, label: str, words: str) -> bool:
    """The lesson's *Try this* paragraph just before the link labelled `label` says `words`."""
    text = (LESSONS / lesson).read_text(encoding="utf-8")
    before = text[:text.index(f"[{label}]")]
    return words in before[before.rfind("**Try this.**"):]


@pytest.fixture(scope="module")
def opened():
    """link parameters -> (models, prediction on the framed sample photo), cached per model and photo."""
    cache = {}

    def get(q: dict):
        key = (q["model"], q["photo"])
        if key not in cache:
            sample = next(s for s in photos.SAMPLES if s.file.rsplit(".", 1)[0] == q["photo"])
            models = PoseLab(WEIGHTS[q["model"]], None)
            rgb = load_image(photos.SAMPLES_DIR / sample.file)
            cache[key] = models, models.predict(rgb, framed_box(rgb))
        return cache[key]
    return get


def test_every_lesson_has_try_links_and_they_open_existing_pages_models_and_photos():
    assert len(LINKS) >= 6
    assert set(WEIGHTS) == set(links.MODELS)
    for lesson, label, path, q in LINKS:
        assert lesson_view.page_file(path) is not None, (lesson, path)
        assert q.get("model") in WEIGHTS and WEIGHTS[q["model"]].is_file(), (lesson, q)
        assert any(s.file.rsplit(".", 1)[0] == q.get("photo") for s in photos.SAMPLES), (lesson, q)


@pytest.mark.parametrize("lesson,label,path,q", [x for x in LINKS if "occ" in x[3]], ids=lambda x: str(x)[:20])
def test_hiding_a_joint_hides_the_joint_named_and_its_unary_collapses(lesson, label, path, q, opened):
    models, pred = opened(q)
    box = links.ints(q["occ"], 4)
    k = links.joint_of(q["joint"])
    assert named_joints(label) == [k], (lesson, label)             # the joint shown is the one named
    peaks = touch.peaks(models, touch.maps(models, pred.crop))["unary"]     # (K, 2) crop px
    inside = [j for j in range(len(NAMES)) if box[0] <= peaks[j, 0] < box[2] and box[1] <= peaks[j, 1] < box[3]]
    assert inside == [k], (lesson, [NAMES[j] for j in inside])     # the box covers that joint, and only it
    base, now = touch.maps(models, pred.crop), touch.maps(models, touch.occlude(pred.crop, box))
    u, v = np.round(models.codec.to_heatmap(peaks[k])).astype(int)
    before, after = (float(models.belief(m["unary"])[k][v, u]) for m in (base, now))
    assert after < 0.1 * before, (lesson, before, after)            # its unary collapses where it was
    rows = touch.displacement(models, base, now)
    assert [r["name"] for r in rows if r["moved"]] == [NAMES[k]]    # the page's "moved: right wrist"
    if claims(lesson, label, "the marginal leans on the neighbours"):     # lesson 5
        assert rows[k]["marginal_moved"] < 0.5 * rows[k]["unary_moved"], (lesson, rows[k])


@pytest.mark.parametrize("lesson,label,path,q", [x for x in LINKS if "plant" in x[3]], ids=lambda x: str(x)[:20])
def test_planting_a_joint_slides_its_message_with_the_click(lesson, label, path, q, opened):
    models, pred = opened(q)
    name, x, y = q["plant"].split(",")
    v, a = links.joint_of(name), links.joint_of(q["joint"])
    assert named_joints(label) == [v], (lesson, label)
    assert (a, v) in graph.edges(models.spatial.cfg.graph), "the lesson's edge must exist in the model it opens"
    peaks = []
    for dx in (0, 3):                                               # plant, then plant 3 heatmap px further right
        xy = models.codec.to_crop(np.array([float(x) + dx, float(y)]))
        msg = touch.plant(models, pred.unary, a, v, tuple(xy))["message"]
        peaks.append(np.array(np.unravel_index(int(msg.argmax()), msg.shape))[::-1])   # (x, y) heatmap px
    shift = peaks[1] - peaks[0]
    assert abs(shift[0] - 3) <= 1 and abs(shift[1]) <= 1, shift      # the message slides with the click


@pytest.mark.parametrize("lesson,label,path,q", [x for x in LINKS if "drop" in x[3]], ids=lambda x: str(x)[:20])
def test_switching_a_message_off_changes_the_named_joints_marginal(lesson, label, path, q, opened):
    models, pred = opened(q)
    a = links.joint_of(q["joint"])
    drop = [links.joint_of(t) for t in q["drop"].split(",")]
    assert named_joints(label)[0] == a, (lesson, label)
    for v in drop:
        assert (a, v) in graph.edges(models.spatial.cfg.graph)
        assert NAMES[v].split()[-1] in label                        # "its elbow's message"
    full = touch.marginal_map(pred.log_marginal[a])
    without = touch.marginal_map(touch.without_edges(models, pred.unary, [(a, v) for v in drop])[a])
    assert float((full - without).abs().max()) > 1e-3


@pytest.mark.parametrize("lesson,label,path,q", [x for x in LINKS if "off" in x[3]], ids=lambda x: str(x)[:20])
def test_switching_a_bank_off_changes_what_the_lesson_says(lesson, label, path, q, opened):
    models, pred = opened(q)
    off = tuple(i - 1 for i in links.ints(q["off"]))
    assert all(0 <= i < models.pose.detector.cfg.banks for i in off)
    assert f"bank {q['off']} off" in label
    base, now = touch.maps(models, pred.crop), touch.maps(models, pred.crop, off=off)
    rows = touch.displacement(models, base, now)
    if "peaks move" in (LESSONS / lesson).read_text():             # lesson 6: some joints' peaks move
        assert any(r["unary_moved"] > touch.MOVED_PX * models.codec.stride for r in rows)
    else:                                                           # lesson 2: the confidences change
        assert any(abs(r["unary_conf_after"] - r["unary_conf_before"]) > 0.05 for r in rows)


def test_the_lessons_and_message_example_uses_edges_of_the_tree():
    """Lesson 4's "the product is an AND" example: every message it names is an edge into the
    right wrist in the default (tree) model."""
    text = (LESSONS / "04_message_passing.md").read_text()
    section = text.split("## The product is an AND", 1)[1].split("##", 1)[0]
    senders = re.findall(r"The ([a-z]+ [a-z]+)'s message", section)
    assert senders
    tree = graph.edges("tree")
    for s in senders:
        assert (NAMES.index("right wrist"), NAMES.index(s)) in tree, s


def test_lessons_count_what_they_list():
    """"Four things ... matter" lists four; lesson 3 counts kernels after saying what a self edge is."""
    words = {"two": 2, "three": 3, "four": 4, "five": 5}
    for f in sorted(LESSONS.glob("0*.md")):
        text = f.read_text()
        for m in re.finditer(r"\b(Two|Three|Four|Five) things [^.:]*:\s*\n\n((?:- .*\n)+)", text):
            assert len(m[2].strip().splitlines()) == words[m[1].lower()], (f.name, m[1])
    l3 = (LESSONS / "03_spatial_priors.md").read_text()
    assert l3.index("**self edge**") < l3.index("196")


def test_lesson_4_credits_joint_training_only_to_a_model_that_had_it():
    """The from-scratch model never had a joint stage (its card lists detector and spatial
    stages only), so lesson 4's sentence quoting its numbers must say so."""
    from lab.infer import PRETRAINED
    card = (PRETRAINED / "scratch.md").read_text()
    stages = [line.split("|")[1].strip() for line in card.splitlines() if line.startswith("| ")
              and line.split("|")[1].strip() in ("detector", "spatial", "joint")]
    assert stages and "joint" not in stages
    text = (LESSONS / "04_message_passing.md").read_text()
    sentence = next(s for s in re.split(r"(?<=\.)\s", text) if "{{pck:scratch:" in s)
    assert "without* joint training" in sentence or "no joint stage" in sentence, sentence
