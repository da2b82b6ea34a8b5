"""Lessons: the six short lessons in lessons/, one per page of the app, each linking to its page."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import streamlit as st

from lab import quotes, selfcheck
from lab.app import common, data, photos
from lab.eval import results as evals

VIEWS = Path(common.__file__).resolve().parent / "views"
PICK = "lesson_pick"
ITEM = re.compile(r"^\s*\d+\.\s+\[(?P<title>[^\]]+)\]\((?P<file>[\w.-]+\.md)\):?\s*(?P<desc>.*)$")
# a line that is only a link to an app page, with or without a prepared state (a "try this" link)
PAGE_LINK = re.compile(r"^\s*\[(?P<label>[^\]]+)\]\(/(?P<path>[\w-]+)(?:\?(?P<query>[^)\s]*))?\)\s*$")
NEXT = re.compile(r"^\s*Next lesson:\s*(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Lesson:
    file: str
    title: str
    description: str


def page_file(url_path: str) -> Path | None:
    """The view behind an app url path (common.PAGES), e.g. "detector" -> views/detector.py."""
    for name, _title, path in common.PAGES:
        if path == url_path:
            return VIEWS / f"{name}.py"
    return None


def read_index() -> tuple[list[Lesson], str]:
    """The lessons in lessons/README.md order, and the README's references section."""
    text = (common.LESSONS / "README.md").read_text(encoding="utf-8")
    items = []
    for line in text.splitlines():
        m = ITEM.match(line)
        if m and (common.LESSONS / m["file"]).is_file():
            desc = re.sub(r"\s*Page:\s*\[[^\]]*\]\([^)]*\)\.?\s*$", "", m["desc"]).strip()
            items.append(Lesson(m["file"], m["title"], desc))
    refs = text.split("## References", 1)[1].strip() if "## References" in text else ""
    return items, refs


def shipped_pck(model: str, method: str) -> float | None:
    """A shipped model's PCK@0.2 for `lab.quotes.fill`, through the app's cached, checked
    reading of its evaluation JSON."""
    check = data.evaluation(common.PRETRAINED / f"{model}.safetensors")
    return evals.pck_of(check["result"], method) if check["result"] else None


def render(text: str, lessons: list[Lesson]) -> None:
    """Markdown (KaTeX included), with a line that is only a link to an app page, e.g.
    `[Open the Part detector page](/detector)`, turned into a page link, and the closing
    `Next lesson: ...` into a link to that lesson."""
    buf: list[str] = []

    def flush():
        if any(s.strip() for s in buf):
            st.markdown("\n".join(buf))
        buf.clear()

    by_title = {ls.title.lower(): ls for ls in lessons}
    for line in text.splitlines():
        m, n = PAGE_LINK.match(line), NEXT.match(line)
        if m and page_file(m["path"]) is not None:
            flush()
            st.page_link(str(page_file(m["path"])), label=m["label"], icon=":material/arrow_forward:",
                         query_params=dict(parse_qsl(m["query"] or "")) or None)
        elif n:
            flush()
            title = re.sub(r"\s*\(.*\)\s*$", "", n["title"]).strip()
            target = by_title.get(title.lower())
            if target:
                st.page_link(str(VIEWS / "lessons.py"), label=f"Next lesson: {n['title']}",
                             icon=":material/menu_book:", query_params={"lesson": target.file})
            else:
                buf.append(line)
        else:
            buf.append(line)
    flush()


def pick_lesson(lessons: list[Lesson], refs: str) -> Lesson:
    """The lesson list (a lesson link's ?lesson= picks one), its description and the references."""
    files = [ls.file for ls in lessons]
    wanted = st.query_params.get("lesson")
    if wanted in files and st.session_state.get(PICK) != wanted:
        st.session_state[PICK] = wanted         # arrived through a lesson link
    if st.session_state.get(PICK) not in files:
        st.session_state[PICK] = files[0]

    def picked():
        st.query_params["lesson"] = st.session_state[PICK]

    st.radio("Lesson", files, key=PICK, on_change=picked,
             format_func=lambda f: f"{files.index(f) + 1}. {lessons[files.index(f)].title}")
    cur = lessons[files.index(st.session_state[PICK])]
    st.caption(cur.description[:1].upper() + cur.description[1:])
    if refs:
        with st.expander("References"):
            st.markdown(refs)
    return cur


def show_lesson(cur: Lesson, lessons: list[Lesson]) -> None:
    """The lesson's text, its numbers filled in from the evaluation JSONs."""
    path = common.LESSONS / cur.file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        st.error(f"Could not read {path.name}: {e}")
        return
    render(quotes.fill(text, shipped_pck), lessons)


def _photo_context():
    """The learner's current photo, its prediction and name, for the questions' sentences
    about it; (None, None, "") when the models cannot load."""
    models = common.load_models()
    if models is None:
        return None, None, ""
    ph = photos.current_photo()
    return models, photos.predict(models, ph), ph.label


def self_check(cur: Lesson) -> None:
    """The lesson's questions (`lab.selfcheck`), each answered on the page with its verdict and
    explanation at once; answers live in this session's state only."""
    qs = selfcheck.questions_for(cur.file)
    if not qs:
        return
    st.divider()
    st.subheader("Check yourself")
    st.caption("Answer on the page: each answer is checked at once. Your answers stay in this browser "
               "session only; nothing is stored.")
    context = None
    for n, q in enumerate(qs, 1):
        key = f"sc_{q.id}"
        st.markdown(f"**{n}.** {q.text}")
        if q.kind == "choice":
            given = st.radio(f"Question {n}", list(range(len(q.options))), index=None, key=key,
                             format_func=lambda i, q=q: q.options[i], label_visibility="collapsed")
        else:
            whole = isinstance(q.answer, int) and not q.tolerance
            given = st.number_input(f"Your answer{(' (' + q.unit.strip() + ')') if q.unit else ''}", value=None,
                                    key=key, step=1 if whole else (0.01 if q.tolerance < 0.1 else 0.1),
                                    format=None if whole else ("%.3f" if q.tolerance < 0.1 else "%.1f"))
        if given is None:
            continue
        ok, text = selfcheck.check(q, given)
        (st.success if ok else st.error)(text, icon=":material/check_circle:" if ok else ":material/cancel:")
        if q.on_photo is not None:
            if context is None:
                context = _photo_context()
            sentence = selfcheck.photo_sentence(q, *context)
            if sentence:
                st.info(sentence, icon=":material/photo_camera:")


INTRO = (
    "Six short lessons walk through Tompson et al. (NIPS 2014) in order: heatmaps, the part detector, "
    "spatial priors, message passing, the comparison with direct regression, and training. Each one ends "
    "with a link to the page of this app where you can look inside that stage on real photos, and each page "
    "links back here.")


def main() -> None:
    st.title("Lessons")
    st.markdown(INTRO)
    lessons, refs = read_index()
    if not lessons:
        st.error(f"No lessons found in {common.LESSONS}.")
        return
    left, right = st.columns([1, 3], gap="large")
    with left:
        cur = pick_lesson(lessons, refs)
    with right:
        show_lesson(cur, lessons)
        common.friendly(lambda: self_check(cur))


common.friendly(main)
