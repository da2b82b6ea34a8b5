"""Model cards are written from the checkpoint's own metadata: the shipped model's training
table names what every stage's loss scored and the validation PCK it ended at."""
from lab.eval.cards import loss_terms, training_table
from lab.models import io
from lab.resources import PRETRAINED


def test_loss_terms_name_what_each_stage_scored():
    assert loss_terms("detector", {}) == "unary"
    assert loss_terms("spatial", {"prior_decay": 1e-3}) == "marginal + prior penalty x 0.001"
    assert loss_terms("joint", {"unary_weight": 0.0, "prior_decay": 0}) == "marginal + unary x 0.0"


def test_the_shipped_cards_training_table_follows_its_stages():
    meta = io.read_meta(PRETRAINED / "pose.safetensors")
    stages = io.stages(meta)
    rows = [r for r in training_table(meta) if r.startswith("| ") and not r.startswith("| stage")
            and not r.startswith("| ---")][:len(stages)]
    assert [r.split(" | ")[0][2:] for r in rows] == [s["stage"] for s in stages]
    last = stages[-1]
    assert f"unary x {last['train']['unary_weight']}" in rows[-1]
    for k, v in last["final_val_pck"].items():
        assert f"{k} {100 * v:.1f}" in rows[-1]
