"""`pose-lab handout`: one self-contained, printable HTML file of the lessons, numbers filled
in from the eval JSONs, app links pointing at the lab's URL, questions with their answers."""
from __future__ import annotations

import re

import pytest

from lab import handout, quotes, selfcheck
from lab.cli import main
from lab.errors import LabError
from lab.resources import LESSONS

URL = "http://lab.example:8501"


@pytest.fixture(scope="module")
def page() -> str:
    return handout.build(URL + "/")


def test_every_lesson_is_there_with_its_numbers_filled_in(page):
    items, _, _ = handout.read_index()
    assert len(items) == 6
    for f, title in items:
        assert f'id="{handout.anchor(f)}"' in page and title in page
    assert "{{" not in page and "(not measured yet)" not in page
    for model, method in (("pose", "marginal"), ("regressor", "regressor"), ("scratch", "unary")):
        assert f"{100 * quotes.shipped_pck(model, method):.1f}%" in page


def test_links_open_the_lab_given_and_nothing_is_fetched(page):
    hrefs = re.findall(r'href="([^"]+)"', page)
    app = [h for h in hrefs if not h.startswith("#")]
    assert app and all(h.startswith(URL + "/") or h == URL for h in app), app
    assert any("/detector?occ=" in h for h in app) and any("/messages?" in h for h in app)
    assert URL + "/" in app and URL + "/try-it" not in app               # the default page lives at "/"
    assert not any(h.startswith("/") for h in hrefs)                       # no link a file viewer can't open
    anchors = {h[1:] for h in hrefs if h.startswith("#")}
    assert all(f'id="{a}"' in page for a in anchors)
    assert "<script" not in page and not re.search(r'(src|@import)\s*=?\s*["\']?https?:', page)


def test_it_prints_on_a_light_page_one_lesson_per_page(page):
    assert "@page" in page and "break-before: page" in page and "background: #fff" in page
    assert page.count('<section class="lesson') == 6 + 2                  # lessons, answers, references


def test_questions_and_answers_follow_the_self_check(page):
    for q in selfcheck.QUESTIONS:
        assert handout.inline(q.text, lambda t: None) in page
    assert "Answers to the questions" in page
    q = next(q for q in selfcheck.QUESTIONS if q.id == "l1_stride")
    assert f"<strong>C. {q.options[q.right()]}</strong>" in page


def test_lesson_5_carries_the_pck_curves_to_alpha_0_5(page):
    svg = re.search(r"<svg.*?</svg>", page, re.S)[0]
    assert svg.count("<polyline") == 4 and ">0.5</text>" in svg


def test_markdown_subset():
    link = lambda t: "X" + t                                                    # noqa: E731
    assert handout.markdown("# T\n\nA **b** and *c* [d](/e).", link) == \
        '<h2>T</h2>\n<p>A <strong>b</strong> and <em>c</em> <a href="X/e">d</a>.</p>'
    t = handout.markdown("| a | b |\n|---|---:|\n| 1 | 2 |", link)
    assert "<th>a</th>" in t and "<td>2</td>" in t and "---" not in t
    assert handout.tex(r"\frac{x_k^{\text{crop}} - 64}{128} \times \alpha") == \
        "(x<sub>k</sub><sup>crop</sup> - 64)/(128) × α"


@pytest.mark.parametrize("bad", ["localhost:8501", "ftp://x", "http://", "http://x/?a=1"])
def test_a_bad_url_is_refused_clearly(bad):
    with pytest.raises(LabError, match="not a lab address"):
        handout.check_url(bad)


def test_the_command_writes_the_file(tmp_path, capsys):
    out = tmp_path / "sub" / "handout.html"
    main(["handout", "--url", URL, "--out", str(out)])
    assert out.read_text().startswith("<!DOCTYPE html>") and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["handout", "--url", "nonsense", "--out", str(out)])
    assert e.value.code == 2 and "not a lab address" in capsys.readouterr().err
    assert LESSONS.is_dir()
