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


def test_the_card_shows_each_epochs_speed_against_the_model_only_speed():
    hist = [{"epoch": 1, "seconds": 600, "val_pck": {"unary": 0.5}, "images_per_s": 17.4,
             "vs_model_only": 0.91, "load_average": 1.2},
            {"epoch": 2, "seconds": 900, "val_pck": {"unary": 0.55}, "images_per_s": 9.0,
             "vs_model_only": 0.47, "load_average": 5.8}]
    meta = {"stage": "detector", "epoch": 2, "history": hist, "train": {"lr": 2e-3}}
    text = "\n".join(training_table(meta))
    assert "- detector: 17.4 (0.91x, load 1.2); 9.0 (0.47x, load 5.8)" in text


def test_a_card_of_a_run_without_speed_figures_has_no_speed_section():
    meta = {"stage": "detector", "epoch": 1, "history": [{"epoch": 1, "seconds": 60, "val_pck": {"unary": 0.5}}],
            "train": {}}
    assert "Training speed" not in "\n".join(training_table(meta))


def test_the_card_gives_the_eval_command_that_wrote_the_json():
    from lab.eval.cards import eval_flags
    ev = {"flip_test": True, "scales": [0.8, 1.0, 1.2], "ablations": {"edges": {}}, "robustness": {}}
    assert eval_flags(ev) == " --flip --scales 0.8 1 1.2 --ablate-edges --robustness"
    assert eval_flags({"flip_test": False}) == ""


def test_the_card_tabulates_learners_photos_when_the_json_has_them():
    from lab.eval.cards import photo_table
    ev = {"methods": {"marginal": {"pck@0.2": {"mean": 0.741, "limbs": 0.708}}},
          "upload_path": {"nobody_found": 2, "methods": {"marginal": {"mean": 0.70, "limbs": 0.68}}}}
    text = "\n".join(photo_table(ev))
    assert "found nobody in 2 photos" in text and "| 70.0 | 68.0 | -4.1 |" in text
    assert photo_table({"methods": ev["methods"]}) == []
