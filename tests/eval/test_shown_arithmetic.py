"""Round once, then subtract: every difference the lab shows (the comparison page's gain
column, the tree vs full graph table, the bank and limb tables, the model cards' limb table)
equals the difference of the numbers shown next to it, on the shipped evaluation JSONs."""
from __future__ import annotations

import json
import re

import pytest

from lab import touch
from lab.eval import cards
from lab.eval import results as evals
from lab.eval.pck import points, points_gain
from lab.infer import PRETRAINED


def shown(v: float) -> float:
    """A fraction as the lab prints it: percent to 0.1."""
    return float(f"{100 * v:.1f}")


def load(name: str) -> dict:
    return json.loads((PRETRAINED / f"{name}.eval.json").read_text())


def test_points_round_first_then_subtract():
    # 0.9404 - 0.9296 = 1.08 points, but the page shows 94.0 and 93.0: the gain shown is +1.0
    assert points(0.9404) == 94.0 and points(0.9296) == 93.0
    assert points_gain(0.9404, 0.9296) == 1.0
    assert points_gain(None, 0.5) is None and points(float("nan")) is None


@pytest.mark.parametrize("name", ["pose", "pose_full", "scratch"])
def test_comparison_table_gain_is_the_difference_of_the_shown_columns(name):
    rows = evals.pck_table(load(name)["methods"])
    for r in rows:
        assert f"{100 * r['marginal - unary']:+.1f}" == f"{shown(r['marginal']) - shown(r['unary']):+.1f}", r["name"]


def test_graph_table_and_card_agree_on_the_worst_group():
    rows = touch.graph_rows({"tree": load("pose"), "full": load("pose_full")})
    for r, name in zip(rows, ("pose", "pose_full")):
        m = load(name)["methods"]
        u, g = m["unary"]["pck@0.2"], m["marginal"]["pck@0.2"]
        assert f"{100 * r['gain']:+.1f}" == f"{shown(g['mean']) - shown(u['mean']):+.1f}"
        group, diff = r["worst_group"]
        assert f"{100 * diff:+.1f}" == f"{shown(g['groups'][group]) - shown(u['groups'][group]):+.1f}"
        # the group table of the model card (`pose-lab card`) shows the same two numbers
        card = "\n".join(cards.results_table(load(name)))
        for method, p in (("unary", u), ("marginal", g)):
            assert f"{100 * p['groups'][group]:.1f}" in card


@pytest.mark.parametrize("rows_of,name", [(touch.bank_rows, "pose"), (touch.edge_rows, "pose"),
                                          (touch.edge_rows, "pose_full")])
def test_ablation_tables_lost_is_the_difference_of_the_shown_pck(rows_of, name):
    rows = rows_of(load(name))
    full = rows[0]
    for r in rows[1:]:
        for m in ("unary", "marginal"):
            if r[m] is None:
                assert r[m + "_drop"] is None
                continue
            assert f"{100 * r[m + '_drop']:.1f}" == f"{shown(full[m]) - shown(r[m]):.1f}", r["setting"]
        assert "_" not in r["label"]                          # words, not codes like r_ank-r_kne


def test_card_limb_table_change_is_the_difference_of_the_shown_pck():
    lines = cards.edge_table(load("pose"))
    full = float(re.search(r"all edges: ([\d.]+)", " ".join(lines))[1])
    for line in lines:
        m = re.match(r"\| (\S+) \| ([\d.]+) \| ([+-][\d.]+) \|", line)
        if m:
            assert f"{float(m[2]) - full:+.1f}" == m[3], line
