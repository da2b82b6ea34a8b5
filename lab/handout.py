"""`pose-lab handout`: the six lessons as one self-contained, printable HTML file.

Numbers are filled in from the shipped eval JSONs (as the Lessons page does), each lesson
ends with its self-check questions (answers at the end, for the teacher), lesson 5 carries
its PCK curves as an inline SVG, and every link to an app page points at the running lab
whose URL is given (`--url http://lab.example:8501`). No network, no scripts: one file that
prints on a light background with a page break before each lesson.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urlparse

from lab import quotes, selfcheck
from lab.errors import LabError
from lab.resources import LESSONS, PRETRAINED

ITEM = re.compile(r"^\s*\d+\.\s+\[(?P<title>[^\]]+)\]\((?P<file>[\w.-]+\.md)\):?\s*(?P<desc>.*)$")
DEFAULT_PAGE = "try-it"         # the app's default page (lab/app/main.py), served at "/"
COLOURS = {"unary": "#56B4E9", "marginal": "#0072B2", "regressor": "#D55E00", "mean_pose": "#8c8c8c"}


# ------------------------------------------------------------------ a small Markdown subset
TEX = [(r"\\(?:big|Big|bigg|Bigg)[lr]?", ""), (r"\\left|\\right", ""), (r"\\,|\\;|\\!|\\qquad|\\quad", " "),
       (r"\\times", "×"), (r"\\cdot", "·"), (r"\\ast", "∗"), (r"\\alpha", "α"), (r"\\sigma", "σ"),
       (r"\\delta", "δ"), (r"\\sum", "∑"), (r"\\prod", "∏"), (r"\\le(?:q)?\b", "≤"), (r"\\ge(?:q)?\b", "≥"),
       (r"\\approx", "≈"), (r"\\in\b", "∈"), (r"\\to\b", "→"), (r"\\infty", "∞"), (r"\\mid", "|"),
       (r"\\\|", "‖"), (r"\\star", "⋆"), (r"\\dots|\\ldots", "…"), (r"\\mathbb\{R\}", "ℝ"), (r"\\bar\{(\w+)\}", r"\1̄"),
       (r"\\hat\{(\w+)\}", r"\1̂"), (r"\\tfrac|\\dfrac", r"\\frac"), (r"\\mathcal\{(\w)\}", r"\1"),
       (r"\\(?:mathrm|text|mathbf|operatorname)\{([^{}]*)\}", r"\1"), (r"\\(exp|log|max|min)\b", r"\1"),
       (r"\\frac\{((?:[^{}]|\{[^{}]*\})*)\}\{((?:[^{}]|\{[^{}]*\})*)\}", r"(\1)/(\2)"),
       (r"\\frac(\d)(\d)", r"\1/\2"), (r"\\mathbf|\\boldsymbol", ""), (r"\\\\", " ")]


def tex(src: str) -> str:
    """TeX as readable print: common commands as Unicode, sub- and superscripts as HTML."""
    s = src
    for pat, rep in TEX:
        s = re.sub(pat, rep, s)
    s = html.escape(s, quote=False)
    for mark, tag in (("_", "sub"), (r"\^", "sup")):
        s = re.sub(mark + r"\{([^{}]*)\}", rf"<{tag}>\1</{tag}>", s)
        s = re.sub(mark + r"([\w*′⋆])", rf"<{tag}>\1</{tag}>", s)
    return s.replace("{", "").replace("}", "").replace("\\", "")


def inline(text: str, link) -> str:
    """Inline Markdown: `code`, $math$, **bold**, *italic*, [links](target)."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`|\$([^$]+)\$", text):
        out.append(_emph(text[pos:m.start()], link))
        out.append(f"<code>{html.escape(m[1])}</code>" if m[1] is not None else f'<span class="tex">{tex(m[2])}</span>')
        pos = m.end()
    out.append(_emph(text[pos:], link))
    return "".join(out)


def _emph(text: str, link) -> str:
    def a(m):
        href = link(html.unescape(m[2]))
        return f'<a href="{html.escape(href)}">{m[1]}</a>' if href else m[1]
    s = html.escape(text, quote=False)
    s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", a, s)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
    return s


def markdown(text: str, link) -> str:
    """The lessons' Markdown (headings, paragraphs, lists, tables, quotes, $$ blocks) as HTML."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.strip().startswith("$$"):
            body = [line.strip()[2:]]
            i += 1
            while i < len(lines) and "$$" not in lines[i]:
                body.append(lines[i])
                i += 1
            if i < len(lines):
                body.append(lines[i].split("$$")[0])
            i += 1
            out.append(f'<div class="tex display">{tex(" ".join(b.strip() for b in body))}</div>')
        elif m := re.match(r"^(#{1,4})\s+(.*)$", line):
            n = len(m[1]) + 1                     # a lesson's # is the page's h2
            out.append(f"<h{n}>{inline(m[2], link)}</h{n}>")
            i += 1
        elif line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            head = "".join(f"<th>{inline(c, link)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{inline(c, link)}</td>" for c in r) + "</tr>" for r in rows[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif line.startswith(">"):
            quote = []
            while i < len(lines) and lines[i].startswith(">"):
                quote.append(lines[i][1:].strip())
                i += 1
            out.append(f"<blockquote>{markdown(chr(10).join(quote), link)}</blockquote>")
        elif re.match(r"^\s*(-|\d+\.)\s+", line):
            tag = "ol" if re.match(r"^\s*\d+\.", line) else "ul"
            items = []
            while i < len(lines) and (re.match(r"^\s*(-|\d+\.)\s+", lines[i]) or
                                      (lines[i].startswith("   ") and items)):
                if re.match(r"^\s*(-|\d+\.)\s+", lines[i]) and not lines[i].startswith("   "):
                    items.append([re.sub(r"^\s*(-|\d+\.)\s+", "", lines[i])])
                else:
                    items[-1].append(lines[i].strip())
                i += 1
                while i < len(lines) and not lines[i].strip() and i + 1 < len(lines) and lines[i + 1].startswith("   "):
                    items[-1].append("")
                    i += 1
            out.append(f"<{tag}>" + "".join(f"<li>{markdown(chr(10).join(it), link)}</li>" for it in items) + f"</{tag}>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#{1,4}\s|\||>|\s*(-|\d+\.)\s|\s*\$\$)", lines[i]):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{inline(' '.join(para), link)}</p>")
    return "\n".join(out)


# ------------------------------------------------------------------ a figure: the PCK curves
def pck_svg(results: dict[str, dict], width: int = 640, height: int = 360) -> str:
    """The PCK curves of the shipped models (method -> its eval JSON entry with "curve"), as an
    inline SVG: x = α from 0 to the curves' end, y = PCK in %."""
    from lab.names import METHOD_LABELS
    left, right, top, bottom = 52, 16, 16, 46
    w, h = width - left - right, height - top - bottom
    amax = max(max(m["curve"]["alpha"]) for m in results.values())

    def x(a):
        return left + w * a / amax

    def y(p):
        return top + h * (1 - p)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="PCK curves">',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for k in range(0, 11):
        p = k / 10
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(p):.1f}" y2="{y(p):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(p) + 4:.1f}" font-size="11" text-anchor="end">{100 * p:.0f}</text>')
    steps = int(round(amax / 0.1))
    for k in range(steps + 1):
        a = k * 0.1
        parts.append(f'<line x1="{x(a):.1f}" x2="{x(a):.1f}" y1="{top}" y2="{top + h}" stroke="#eee"/>'
                     f'<text x="{x(a):.1f}" y="{top + h + 16}" font-size="11" text-anchor="middle">{a:.1f}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
                 'α (fraction of the torso diameter)</text>'
                 f'<text x="14" y="{top + h / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + h / 2})">PCK (%)</text>')
    for n, (name, m) in enumerate(results.items()):
        c = m["curve"]
        pts = " ".join(f"{x(a):.1f},{y(p):.1f}" for a, p in zip(c["alpha"], c["mean"]))
        dash = ' stroke-dasharray="6 4"' if name == "mean_pose" else ""
        colour = COLOURS.get(name, "#333")
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>'
                     f'<text x="{left + w - 8}" y="{top + h - 10 - 16 * n}" font-size="12" text-anchor="end" '
                     f'fill="{colour}">{html.escape(METHOD_LABELS.get(name, name))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def curves() -> dict[str, dict]:
    """The shipped models' curves the Heatmaps vs regression page draws (their eval JSONs)."""
    from lab.eval import results as evals
    out = {}
    for model, methods in (("pose", ("unary", "marginal", "mean_pose")), ("regressor", ("regressor",))):
        w = PRETRAINED / f"{model}.safetensors"
        res = evals.check_eval(evals.eval_path(w), w)["result"]
        for m in methods:
            if res and m in res["methods"]:
                out[m] = res["methods"][m]
    order = ("unary", "marginal", "regressor", "mean_pose")
    return {m: out[m] for m in order if m in out}


# ------------------------------------------------------------------ the handout
CSS = """
@page { size: A4; margin: 18mm 16mm; }
html { background: #fff; color: #111; }
body { font: 11pt/1.5 Georgia, 'DejaVu Serif', serif; max-width: 46em; margin: 2em auto; padding: 0 1em; }
h1, h2, h3, h4 { font-family: 'DejaVu Sans', Arial, sans-serif; line-height: 1.25; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .2em; }
section.lesson { break-before: page; page-break-before: always; }
table { border-collapse: collapse; margin: .8em 0; break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: .2em .6em; text-align: left; }
blockquote { border-left: 4px solid #0072B2; margin: 1em 0; padding: .2em 1em; background: #f3f7fb; break-inside: avoid; }
code { font-family: 'DejaVu Sans Mono', monospace; font-size: 90%; background: #f2f2f2; padding: 0 .2em; }
.tex { font-family: 'DejaVu Serif', 'Cambria Math', serif; font-style: italic; white-space: nowrap; }
.tex.display { display: block; text-align: center; margin: .8em 0; white-space: normal; }
a { color: #0b5394; }
figure { margin: 1em 0; break-inside: avoid; text-align: center; }
figcaption { font-size: 90%; color: #444; }
.questions { border: 1px solid #bbb; padding: .4em 1.2em; break-inside: avoid; }
.questions ol.options { list-style: upper-alpha; }
.answers li { margin-bottom: .3em; }
@media print {
  a { color: #111; text-decoration: none; }
  a[href^="http"]::after { content: " (" attr(href) ")"; font-size: 80%; color: #444; word-break: break-all; }
}
"""


def check_url(url: str) -> str:
    """The lab's URL without a trailing slash; LabError for anything but http(s)://host[:port][/path]."""
    u = urlparse(url.strip())
    if u.scheme not in ("http", "https") or not u.netloc or u.query or u.fragment:
        raise LabError(f"--url {url!r} is not a lab address: give it as http://host:port "
                       "(for example http://192.168.1.20:8501), the address learners open.")
    return url.strip().rstrip("/")


def read_index(folder: Path = LESSONS) -> tuple[list[tuple[str, str]], str, str]:
    """[(file, title)] in lessons/README.md order, the README's introduction and its references."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    items = [(m["file"], m["title"]) for line in text.splitlines() if (m := ITEM.match(line))
             and (folder / m["file"]).is_file()]
    intro = text.split("\n1.", 1)[0].split("\n", 1)[1].strip() if "\n1." in text else ""
    refs = text.split("## References", 1)[1].strip() if "## References" in text else ""
    return items, intro, refs


def anchor(file: str) -> str:
    return "lesson-" + file.removesuffix(".md")


def questions_html(file: str, first: int) -> tuple[str, list[str]]:
    """A lesson's questions as a numbered block (numbering from `first`), and their answers."""
    qs = selfcheck.questions_for(file)
    if not qs:
        return "", []
    items, answers = [], []
    for n, q in enumerate(qs, first):
        body = inline(q.text, lambda t: None)
        if q.kind == "choice":
            body += '<ol class="options">' + "".join(f"<li>{inline(o, lambda t: None)}</li>" for o in q.options) + "</ol>"
            right = f"{chr(65 + int(q.right()))}. {q.options[int(q.right())]}"
        else:
            body += "<p>Answer: ____________</p>"
            v = q.right()
            right = (f"{v:g}" if isinstance(v, int) else f"{v:.2f}".rstrip("0").rstrip(".")) + q.unit
        items.append(f'<li value="{n}">{body}</li>')
        answers.append(f'<li value="{n}"><strong>{html.escape(right)}</strong>. {inline(q.explanation(), lambda t: None)}</li>')
    return '<div class="questions"><h3>Check yourself</h3><ol>' + "".join(items) + "</ol></div>", answers


def build(url: str, folder: Path = LESSONS, value=quotes.shipped_pck) -> str:
    """The handout's HTML: title page (the README's introduction, the lesson list), each lesson
    with its numbers, figures and questions, the answers, the references."""
    base = check_url(url)
    items, intro, refs = read_index(folder)
    if not items:
        raise LabError(f"No lessons found in {folder}.")
    files = {f for f, _ in items}

    def link(target: str) -> str | None:
        if target.startswith("/"):                       # an app page, with its state
            path, _, query = target[1:].partition("?")
            if path == DEFAULT_PAGE:                     # Streamlit serves the default page at "/" only
                path = ""
            return f"{base}/{path}" + (f"?{query}" if query else "")
        if target in files:
            return "#" + anchor(target)
        return target if re.match(r"https?://", target) else None

    toc = "".join(f'<li><a href="#{anchor(f)}">{html.escape(t)}</a></li>' for f, t in items)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>pose-lab: lessons handout</title>", f"<style>{CSS}</style></head><body>",
           "<header><h1>pose-lab: the lessons</h1>",
           f"<p>{inline(intro, link)}</p>" if intro else "",
           f'<p>Open the lab at <a href="{html.escape(base)}">{html.escape(base)}</a>: every “Open … page” and '
           "“Try it” link below opens that page in the state the lesson describes.</p>",
           f"<ol>{toc}</ol></header>"]
    answers, number = [], 1
    for f, title in items:
        text = quotes.fill((folder / f).read_text(encoding="utf-8"), value)
        text = re.sub(r"^\s*Next lesson:.*$", "", text, flags=re.M)
        body = markdown(text, link)
        if f.startswith("05"):
            c = curves()
            if c:
                fig = (f'<figure>{pck_svg(c)}<figcaption>PCK@α of the shipped models on the LSP test set, from '
                       "their evaluation files (the curves of the Heatmaps vs regression page).</figcaption></figure>")
                body = body.replace("<h3>Cascades</h3>", fig + "\n<h3>Cascades</h3>", 1)
        qs, ans = questions_html(f, number)
        number += len(ans)
        if ans:
            answers.append(f"<h3>{html.escape(title)}</h3><ol>" + "".join(ans) + "</ol>")
        out.append(f'<section class="lesson" id="{anchor(f)}">{body}{qs}</section>')
    out.append('<section class="lesson answers"><h2>Answers to the questions</h2>' + "".join(answers) + "</section>")
    if refs:
        out.append(f'<section class="lesson"><h2>References</h2>{markdown(refs, link)}</section>')
    out.append("</body></html>")
    return "\n".join(o for o in out if o)


def write(url: str, out: str | Path) -> Path:
    out = Path(out)
    text = build(url)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise LabError(f"Could not write {out}: {e}")
    return out
