"""Self-check questions: two or three per lesson, answered on the Lessons page (and printed
by `pose-lab handout`, answers at the end).

A question is multiple choice or a number read off a figure. `check` says whether an answer
is right and explains why; `on_photo` adds a sentence about the learner's current photo
where the question has one (its prediction, `lab.infer.Prediction`). Figures come from the
lab itself (the codec, the graph, the eval JSONs), never typed here. Nothing is stored:
the page keeps the answers in the learner's session only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lab.joints import NAMES, R_WRIST


@dataclass(frozen=True)
class Question:
    id: str                          # unique, stable: the session key of the answer
    lesson: str                      # the lesson file it ends
    text: str                        # Markdown
    options: tuple[str, ...] = ()    # multiple choice; empty: a number
    answer: Callable[[], float | int] | int = 0   # the right option's index, or the number (lazily, e.g. from an eval JSON)
    tolerance: float = 0.0           # a number within this of the answer is right
    unit: str = ""
    why: str | Callable[[], str] = ""  # the explanation, shown with the verdict
    on_photo: Callable | None = field(default=None, compare=False)   # (models, pred) -> str

    @property
    def kind(self) -> str:
        return "choice" if self.options else "number"

    def right(self) -> float | int:
        return self.answer() if callable(self.answer) else self.answer

    def explanation(self) -> str:
        return self.why() if callable(self.why) else self.why


def check(q: Question, given) -> tuple[bool, str]:
    """(right?, the explanation) for an answer: an option's index, or a number."""
    want = q.right()
    if q.kind == "choice":
        ok = given is not None and int(given) == int(want)
        head = "Right." if ok else f"Not quite: the answer is “{q.options[int(want)]}”."
    else:
        try:
            ok = given is not None and abs(float(given) - float(want)) <= q.tolerance + 1e-9
        except (TypeError, ValueError):
            ok = False
        shown = f"{want:g}" if isinstance(want, int) else f"{want:.1f}"
        head = "Right." if ok else f"Not quite: the answer is {shown}{q.unit}."
    return ok, f"{head} {q.explanation()}"


def photo_sentence(q: Question, models, pred, photo_name: str) -> str | None:
    """The question's sentence about the learner's current photo, or None (no such sentence,
    or it could not be made)."""
    if q.on_photo is None or models is None or pred is None:
        return None
    try:
        return f"On your current photo ({photo_name}): " + q.on_photo(models, pred)
    except Exception:                       # a hint must never break the page
        return None


# ------------------------------------------------------------------ figures the answers need
def _stride() -> int:
    from lab.data.codec import STRIDE
    return STRIDE


def _tree_edges() -> int:
    from lab.models import graph
    return len(graph.edges("tree"))


def _shipped_pck(weights: str, method: str) -> float:
    """A shipped model's mean PCK@0.2 in % as the app shows it (rounded to 0.1), checked
    against its weights; NaN when its eval JSON cannot be shown."""
    from lab.eval import results as evals
    from lab.eval.pck import points
    from lab.resources import PRETRAINED
    w = PRETRAINED / f"{weights}.safetensors"
    check_ = evals.check_eval(evals.eval_path(w), w)
    v = evals.pck_of(check_["result"], method) if check_["result"] else None
    return float("nan") if v is None else points(v)


# ------------------------------------------------------------------ sentences about the learner's photo
def _wrist_cell(models, pred) -> str:
    xy = pred.crop_joints("unary")[R_WRIST]
    u, v = models.codec.to_heatmap(np.asarray(xy, np.float64))
    return (f"the {NAMES[R_WRIST]}'s unary peaks at heatmap pixel ({u:.0f}, {v:.0f}), which is crop pixel "
            f"({xy[0]:.0f}, {xy[1]:.0f}): {models.codec.stride} crop pixels per heatmap pixel.")


def _facing(models, pred) -> str:
    from lab.analysis import facing
    f = facing(pred.crop_joints("marginal" if "marginal" in pred.joints else "unary"))
    xr = pred.crop_joints("unary")[R_WRIST][0]
    return {"camera": "the skeleton says the person faces the camera, ",
            "away": "the skeleton says the person has their back to the camera (or left and right are swapped), ",
            "side-on": "the person is seen side-on, "}[f] + \
        f"and their right wrist is at x = {xr:.0f} of the {models.size}-pixel crop."


def _second_peaks(models, pred) -> str:
    from lab.analysis import peak_report
    strong = [NAMES[r["joint"]] for r in peak_report(models, pred) if r["strong"]]
    return (f"{len(strong)} of the 14 unary maps have a strong second peak"
            + (f" ({', '.join(strong)}): candidate false positives that a neighbour could veto." if strong else
               ": the detector alone is sure of every joint here."))


def _moved(models, pred) -> str:
    if "marginal" not in pred.joints:
        return "the chosen model has no spatial model, so nothing is multiplied in."
    d = np.linalg.norm(pred.crop_joints("marginal") - pred.crop_joints("unary"), axis=1)
    k = int(np.argmax(d))
    return (f"the messages moved the {NAMES[k]} furthest, {d[k]:.0f} crop px from its unary peak"
            + (" (the neighbours overruled the detector)." if d[k] > 8 else
               "; every joint stayed within 8 crop px (the neighbours agreed)."))


# ------------------------------------------------------------------ the questions
QUESTIONS: tuple[Question, ...] = (
    Question("l1_stride", "01_heatmaps.md",
             "The crop is 128×128 and each heatmap 32×32. How many crop pixels does one heatmap pixel span "
             "along each side?", ("1", "2", "4", "8"), answer=2,
             why="128 / 32 = 4: the output has stride 4, which is why sub-pixel decoding matters.",
             on_photo=_wrist_cell),
    Question("l1_sides", "01_heatmaps.md",
             "A person faces the camera. On which side of the **image** is their right wrist?",
             ("The image's left", "The image's right", "It depends on the camera"), answer=0,
             why="Labels are the person's own: facing you, their right is on your left.",
             on_photo=_facing),
    Question("l2_coarse", "02_part_detector.md",
             "The coarse bank sees the crop at 64×64 instead of 128×128. A 5×5 filter in it covers …",
             ("half as much of the person", "the same part of the person", "twice as much of the person (along each side)"),
             answer=2, why="Half the resolution: each pixel spans twice the distance, so the same filter sees more "
                           "context. That is what the coarse bank is for."),
    Question("l2_veto", "02_part_detector.md",
             "A right-wrist map peaks on both hands. What can tell the detector which peak is right?",
             ("A larger learning rate", "Another joint, such as the right elbow", "A larger heatmap σ"), answer=1,
             why="The information is elsewhere in the body: a wrist sits a forearm's length from its elbow. "
                 "A local detector cannot use it; the spatial model can.",
             on_photo=_second_peaks),
    Question("l3_edges", "03_spatial_priors.md",
             "How many directed edges has the tree graph, the 14 self edges included?", answer=_tree_edges,
             why="13 limbs in both directions (26) plus 14 self edges: 40. The Spatial priors page counts "
                 "them for the chosen model."),
    Question("l3_kernel", "03_spatial_priors.md",
             "Why is each prior kernel 63×63 on 32×32 heatmaps?",
             ("It is the paper's arbitrary choice",
              "A displacement between two pixels of a 32×32 map ranges over −31 … +31 in each direction",
              "The FFT needs an odd size"), answer=1,
             why="63 = 2 × 31 + 1 cells cover every displacement between two heatmap pixels."),
    Question("l4_product", "04_message_passing.md",
             "At a false right-wrist peak the unary is 0.8 and the right elbow's message 0.05. What is the "
             "product of the two?", answer=0.04, tolerance=0.001,
             why="0.8 × 0.05 = 0.04, against 0.9 × 0.7 = 0.63 at the true wrist: the product is an AND.",
             on_photo=_moved),
    Question("l4_bias", "04_message_passing.md",
             "A neighbour is hidden: its unary is about 0 everywhere. What does its message do to the marginal?",
             ("Wipes it out: the product becomes 0", "Nothing to its peak: the bias makes the message a constant",
              "Moves the peak towards the neighbour"), answer=1,
             why="The SoftPlus bias gives every message a positive floor; a constant factor does not move a "
                 "peak, so a neighbour that found nothing abstains."),
    Question("l5_read", "05_regression.md",
             "On the Heatmaps vs regression page, read the **regressor's** PCK at α = 0.2 off the PCK curves "
             "(in %, to the nearest point).", answer=lambda: _shipped_pck("regressor", "regressor"),
             tolerance=1.0, unit=" %",
             why=lambda: f"The regressor's curve passes {_shipped_pck('regressor', 'regressor'):.1f} % at α = 0.2; "
                         f"the detector with its spatial model reaches {_shipped_pck('pose', 'marginal'):.1f} %."),
    Question("l5_mean", "05_regression.md",
             "An image is ambiguous between a raised and a lowered forearm. Where does an L2 regressor tend "
             "to put the wrist?", ("On the raised arm", "On the lowered arm", "Between the two"), answer=2,
             why="An L2 loss is minimised by the mean of the plausible answers: a wrist floating between them. "
                 "A heatmap can hold two peaks and commits to one."),
    Question("l6_overfit", "06_training.md",
             "The training loss keeps falling while the validation loss rises. What is happening?",
             ("The learning rate is too low", "Overfitting: the model learns its training crops",
              "The spatial model switched on"), answer=1,
             why="The gap between the two curves is the overfitting; stop at the best validation epoch, or add "
                 "data and augmentation."),
    Question("l6_pick", "06_training.md",
             "Which images may you look at to choose the best epoch?",
             ("The validation split", "The test set (LSP im1001–im2000)", "Either"), answer=0,
             why="Every choice made by looking at a set is a little training on it: choose on validation, "
                 "report on test once."),
)


def questions_for(lesson_file: str) -> list[Question]:
    return [q for q in QUESTIONS if q.lesson == lesson_file]
