"""Model cards, written from facts only: the checkpoint's own metadata (configs,
per-stage history, hardware, commit) and the evaluation JSON `pose-lab eval` wrote."""
from __future__ import annotations

import json
from pathlib import Path

from lab.eval.evaluate import sha256
from lab.joints import GROUPS, SHORT
from lab.models import io

LABELS = {"unary": "detector alone (unary)", "spatial": "detector + spatial model (marginal)",
          "regressor": "DeepPose-style regressor"}


def stages(meta: dict) -> list[dict]:
    """Every training stage behind a checkpoint, oldest first (lineage + its own)."""
    from lab.train.loop import stage_summary
    return list(meta.get("lineage", [])) + [stage_summary(meta)]


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


def card(model_path: Path, eval_path: Path) -> str:
    meta = io.read_meta(model_path)
    ev = json.loads(Path(eval_path).read_text())
    size = Path(model_path).stat().st_size
    lines = [f"# Model card: `{Path(model_path).name}`", "",
             f"- kind: **{meta['kind']}**; file size {size / 2**20:.2f} MiB; sha256 `{sha256(model_path)}`",
             f"- evaluation file: `{Path(eval_path).name}` (written by `pose-lab eval`, sha256 of the weights "
             f"it evaluated: `{ev['sha256']}`)", ""]
    lines += ["## Data", "",
              "Standard LSP protocol: train on the 10,000 LSPET images + LSP im0001-im1000, minus a seeded "
              f"{100 * meta['data']['val_fraction']:.0f}% validation split (seed {meta['data']['seed']}) "
              "used for monitoring only; test on LSP im1001-im2000, never used for training, tuning or "
              f"checkpoint choice. Crops {meta['data']['crop_size']} px, heatmaps at stride 4, target sigma "
              f"{meta['data']['sigma']} heatmap px.", ""]
    lines += ["## Configuration", "", "```json",
              json.dumps({k: meta[k] for k in ("detector", "spatial", "regressor") if meta.get(k)}, indent=1),
              "```", ""]
    lines += ["## Training", "", "| stage | epochs | images/epoch | lr | seed | wall time | hardware | torch | commit | final val PCK@0.2 |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |"]
    for s in stages(meta):
        t, p = s.get("train") or {}, s.get("provenance") or {}
        val = ", ".join(f"{k} {100 * v:.1f}" for k, v in (s.get("final_val_pck") or {}).items())
        lines.append(f"| {s['stage']} | {s['epochs']} | {s.get('train_images') or 'n/a'} | {t.get('lr')} | "
                     f"{t.get('seed')} | {s['wall_seconds'] / 60:.1f} min | {p.get('hardware', 'not recorded')} | "
                     f"{p.get('torch', 'n/a')} | `{p.get('commit', 'not recorded')[:10]}` | {val} |")
    lines += ["", f"## Results: LSP test ({ev['images']} images), PCK@0.2 in %", "",
              f"Protocol: {ev['protocol']}. Flip test: {ev['flip_test']}.", ""]
    lines += results_table(ev)
    lines += ["", "## Reproduce", "", "```bash",
              f"pose-lab eval --model pretrained/{Path(model_path).name} --split test "
              f"--json pretrained/{Path(eval_path).name}", "```", ""]
    return "\n".join(lines)
