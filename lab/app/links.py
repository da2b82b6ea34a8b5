"""Links that reproduce a view: a page's state in its URL (`st.query_params`).

Each page that takes part writes its state at the end of every run (`share`); the model
and the sample photo are added here. A URL whose parameters this session did not write
itself (a link opened in a fresh browser, one typed or pasted, a lesson's "try this" link)
is *incoming*: `arrive` (lab/app/main.py, before the sidebar) applies the model and the
photo, and the page applies the rest with `take`. Parameters are short strings:

  model   imagenet | scratch | full, or run-<id>: a model retrained on the Retrain page (kept while
          that run's folder holds its model; else the link says so and the shipped model is used)
  photo   a bundled sample's file stem (lsp_im1007)
  person  the picked person of a sample photo, 1-based (left out for person 1, the default)
  joint   a joint's short name (r_wri)  step   1-based step of the message passing
  off     banks switched off, 1-based (1,2)
  occ     occlusion box x0,y0,x1,y1 (crop px, x1/y1 exclusive)
  plant   v,x,y: neighbour v planted at heatmap pixel (x, y)
  drop    neighbours whose message into the joint is left out (r_elb,neck)
  ex      the Message passing page's crop: an example (0-based) or "own" (the current photo)

off, occ and joint (Part detector) and plant and drop (Message passing) belong to sections the
page draws only once opened (`lab.app.common.section`): an incoming value opens its section, and
a closed section writes none.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from lab.app import common, photos
from lab.joints import SHORT

MODELS = {"imagenet": common.SHIPPED, "scratch": common.SCRATCH, "full": common.FULL}
RUN = "run-"                    # model=run-<run id>: a retrained model
WRITTEN, INCOMING, GONE = "links_written", "links_incoming", "links_model_gone"


def model_label(value: str | None) -> str | None:
    """The sidebar's label of a link's `model` value: a shipped model, or the retrained run
    whose folder is named in it and still holds a model; None otherwise."""
    if value in MODELS:
        return MODELS[value]
    if value and value.startswith(RUN):
        run_id = value[len(RUN):]
        for label, (pose, _reg) in common.model_choices().items():
            if label.startswith("Retrained:") and Path(pose).parent.name == run_id:
                return label
    return None


def model_value(label: str) -> str | None:
    """The link's `model` value of a sidebar label (the inverse of `model_label`)."""
    value = next((k for k, v in MODELS.items() if v == label), None)
    if value is None and label.startswith("Retrained:"):
        pose = common.model_choices().get(label, (None,))[0]
        value = RUN + Path(pose).parent.name if pose else None
    return value


def arrive(page: str) -> None:
    """Once per incoming URL: apply its model and photo now, keep the rest for `take(page)`."""
    q = st.query_params.to_dict()
    if not q or q == st.session_state.get(WRITTEN):
        return
    st.session_state[WRITTEN] = q                  # applied once: later reruns are ours
    st.session_state[INCOMING] = (page, q)
    label = model_label(q.get("model"))
    if label in common.model_choices():
        st.session_state[common.CHOICE] = label
    elif str(q.get("model", "")).startswith(RUN):
        st.session_state[GONE] = True           # the sidebar says so (`gone_note`)
    sample = next((s for s in photos.SAMPLES if Path(s.file).stem == q.get("photo")), None)
    if sample is not None and photos.current_photo().digest != photos.sample_photo(sample).digest:
        photos.set_photo(photos.sample_photo(sample))
    person = ints(q.get("person"), 1)
    if sample is not None and person and person[0] >= 1:
        photos.pick(photos.current_photo(), person[0] - 1)      # out of range: the page falls back to person 1


def take(page: str) -> dict:
    """The incoming parameters of this page (once), else {}."""
    got = st.session_state.get(INCOMING)
    if not got or got[0] != page:
        return {}
    del st.session_state[INCOMING]
    return dict(got[1])


def share(state: dict, photo: bool = True) -> None:
    """Write the page's state (values None are left out), the model and, with `photo`, the
    current sample photo into the URL."""
    q = {k: str(v) for k, v in state.items() if v is not None}
    model = model_value(common.chosen())
    if model:
        q["model"] = model
    ph = photos.current_photo()
    if photo and ph.source == "sample":
        q["photo"] = next(Path(s.file).stem for s in photos.SAMPLES if s.label == ph.name)
        i = photos.picked_index(ph)
        if i:                                                   # person 2, 3, ...: the default is left out
            q["person"] = str(i + 1)
    if q != st.query_params.to_dict():
        st.query_params.from_dict(q)
    st.session_state[WRITTEN] = q


def gone_note() -> str | None:
    """Once, after a link named a retrained model that no longer exists: what happened."""
    if st.session_state.pop(GONE, False):
        return ("The link named a retrained model that is no longer on this server (its run was deleted), so "
                "the shipped model is shown instead.")
    return None


# ------------------------------------------------------------------ values
def joint_of(text: str | None) -> int | None:
    return SHORT.index(text) if text in SHORT else None


def ints(text: str | None, n: int | None = None) -> list[int] | None:
    """"1,2,3" -> [1, 2, 3] (exactly n of them when n is given), None when malformed."""
    try:
        out = [int(float(t)) for t in str(text).split(",") if t.strip()]
    except ValueError:
        return None
    return out if text is not None and (n is None or len(out) == n) else None


def joined(values) -> str | None:
    values = list(values)
    return ",".join(str(v) for v in values) if values else None
