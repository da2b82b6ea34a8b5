"""What each `pose-lab` subcommand does (lab/cli.py declares their arguments): each
`cmd_*` takes the parsed arguments and calls the library."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from lab import progress
from lab.config import DETECTOR_PRESETS, DataConfig, SpatialConfig
from lab.errors import LabError

DEFAULT_CACHE = Path("cache/lsp128.safetensors")


def _cache(arg: str):
    from lab.data.cache import MINI_PATH, PoseCache
    return PoseCache(MINI_PATH if arg == "mini" else Path(arg))


def cmd_prepare(a) -> None:
    from lab.config import data_root
    from lab.data.cache import MINI_PATH, prepare, prepare_mini
    cfg = DataConfig(crop_size=a.size, margin=a.margin, seed=a.seed, context=a.context,
                     sigma=a.sigma or DataConfig.sigma * a.size / DataConfig.crop_size)
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
    from lab.config import AugmentConfig, DetectorConfig, RegressorConfig, TrainConfig
    from lab.train.distributed import Dist
    from lab.train.loop import train
    dist = Dist.from_env(a.device)          # torchrun: one rank of several; else one process
    cache = _cache(a.cache)
    data = dataclasses.replace(cache.data, sigma=a.sigma) if a.sigma else cache.data
    cfg = TrainConfig(stage=a.stage, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      weight_decay=a.weight_decay, unary_weight=a.unary_weight, trunk_lr=a.trunk_lr,
                      marginal_loss="" if a.marginal_loss == "detector" else a.marginal_loss, prior_decay=a.prior_decay,
                      detector_lr=a.detector_lr, prior_lr=a.prior_lr, warmup=a.warmup,
                      precision=a.precision, channels_last=a.channels_last,
                      train_limit=a.train_limit, seed=a.seed, device=a.device, threads=a.threads,
                      augment=AugmentConfig.preset(a.augment), speed_probe=a.speed_probe,
                      model_only_ips=a.model_only_ips)
    det = DetectorConfig.preset(a.config)
    if a.loss:
        det = dataclasses.replace(det, loss=a.loss)
    reg = RegressorConfig(features=det, loss=a.reg_loss)
    sp = SpatialConfig(graph=a.graph, heatmap_size=data.heatmap_size, bias_init=a.bias_init, hist_blur=a.hist_blur,
                       self_bias=a.self_bias)

    bar: list[progress.Progress] = []       # one bar over every batch of the run (resumes part-way)

    def show(e):
        if e["event"] == "step":
            if not bar:
                bar.append(progress.Progress(e["epochs"] * e["steps"], f"train {a.stage}", unit="batches",
                                             initial=e["epoch"] * e["steps"] + e["step"] - 1))
            bar[0].update(1, postfix=f"epoch {e['epoch'] + 1}/{e['epochs']}, loss {e['loss']:.5f}")
        elif e["event"] == "epoch":
            val = "  ".join(f"{k} {100 * v:.1f}" for k, v in e["val_pck"].items())
            ratio = f" = {e['vs_model_only']:.2f}x model-only {e['model_only_images_per_s']:.0f}" \
                if e.get("vs_model_only") else ""
            line = (f"epoch {e['epoch']:3d}  loss {e['loss']:.5f}  val loss {e.get('val_loss', float('nan')):.5f}  "
                    f"val PCK@0.2 {val}  "
                    f"{e['seconds']:.0f} s  {e['images_per_s']:.0f} img/s{ratio}  load {e['load_average']:.2f}")
            bar[0].write(line) if bar else print(line, flush=True)
    try:
        run = train(cfg, data, cache["train"], cache["val"], Path(a.out), det=det, sp=sp, reg=reg,
                    init=Path(a.init) if a.init else None, callback=show, dist=dist)
    finally:
        for b in bar:
            b.close()
        dist.close()
    if dist.rank == 0:
        print(f"weights: {run.path / 'model.safetensors'}")


def cmd_eval(a) -> None:
    from lab.eval.evaluate import evaluate, summary_table
    res = evaluate(Path(a.model), a.split, cache=a.cache, data=a.data, flip=a.flip, ablate_banks=a.ablate_banks,
                   ablate_edges=a.ablate_edges, scales=tuple(a.scales or ()), upload_path=a.upload_path,
                   robustness=a.robustness)
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
        text = card(Path(a.model), Path(a.eval[0]), [Path(c) for c in a.compared or []])
    else:
        raise LabError("give --model with one --eval, or --summary with one --eval per model")
    Path(a.out).write_text(text)
    print(f"wrote {a.out}")


def cmd_bench(a) -> None:
    import torch
    if a.retrain:
        from lab.bench.latency import retrain_table
        torch.set_num_threads(a.threads)
        retrain_table(presets=tuple(a.preset or ()))
        return
    if a.interactions:
        from lab.bench.interactions import run_interactions
        from lab.infer import POSE_WEIGHTS, SCRATCH_WEIGHTS
        run_interactions([Path(m) for m in a.model] if a.model else [POSE_WEIGHTS, SCRATCH_WEIGHTS],
                         threads=a.threads, reps=a.reps)
        return
    from lab.bench.latency import run_bench
    run_bench(device=a.device, threads=a.threads, configs=tuple(a.config or DETECTOR_PRESETS),
              training=not a.latency_only)


def has_display() -> bool:
    """Whether a browser window can be opened here (macOS and Windows always; elsewhere an
    X11 or Wayland display, and not over SSH without one)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def app_command(a) -> tuple[list[str], dict, str, bool]:
    """(Streamlit's argv, the environment's additions, the URL, whether a browser opens)."""
    from lab.app.settings import ENV, Settings
    env = {}
    for key, value in (("runs_dir", a.runs), ("max_trainings", a.max_trainings), ("workers", a.workers),
                       ("torch_threads", a.torch_threads), ("upload_mb", a.upload_mb)):
        if value is not None:
            env[ENV[key]] = str(Path(value).expanduser().resolve()) if key == "runs_dir" else str(value)
    try:
        settings = Settings.from_env({**os.environ, **env})      # refuse bad values here, not in the server
    except SystemExit as e:
        raise LabError(str(e).removeprefix("pose-lab: "))
    env[ENV["workers"]] = str(settings.workers)              # the server sets its threads deliberately
    env[ENV["torch_threads"]] = str(settings.torch_threads)
    headless = a.headless or not has_display()
    main = Path(__file__).resolve().parent / "app" / "main.py"
    argv = [sys.executable, "-m", "streamlit", "run", str(main),
            "--server.port", str(a.port),
            "--server.headless", "true" if headless else "false",   # with a display Streamlit opens a tab
            "--server.showEmailPrompt", "false",                      # never stop at the first-run prompt
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",                       # the installed code does not change
            "--server.maxUploadSize", str(settings.upload_mb),
            "--server.enableStaticServing", "true",                  # plotly.js for the lab's charts
            "--client.toolbarMode", "viewer"]                         # learners get no developer menu
    if a.address:
        argv += ["--server.address", a.address]
    host = a.address if a.address and a.address not in ("0.0.0.0", "::") else "localhost"
    return argv, env, f"http://{host}:{a.port}", not headless


def cmd_app(a) -> None:
    """Replace this process by the Streamlit server (exec): Ctrl-C and SIGTERM reach the
    server itself, so ending `pose-lab app` always ends the server."""
    argv, env, url, browser = app_command(a)
    os.environ.update(env)
    print(f"pose-lab: serving the lab at {url}" + (" (opening it in your browser)" if browser else "")
          + "; Ctrl-C stops it.", flush=True)
    if a.dry_run:
        print(" ".join(argv))
        return
    if os.name == "posix":
        os.execv(sys.executable, argv)
    import subprocess  # Windows has no real exec: wait, pass Ctrl-C on
    proc = subprocess.Popen(argv)
    try:
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        sys.exit(proc.wait())


def cmd_classroom(a) -> None:
    if a.page_weight:
        from lab.bench import pageweight
        if a.rounds_before < 1:
            raise LabError(f"--rounds-before {a.rounds_before}: at least 1.")
        res = pageweight.run(a.url, timeout=a.timeout, before=a.before, rounds=a.rounds_before,
                             pages=[t.strip() for t in a.pages.split(",")] if a.pages else None)
        if a.json:
            pageweight.dump(res, a.json)
            print(f"wrote {a.json}")
        return
    from lab.bench.capacity import Capacity
    from lab.bench.classroom import run
    from lab.bench.learners import Pace
    uploads, switches = a.per_minute
    if uploads < 0 or switches < 0 or uploads + switches <= 0:
        raise LabError(f"--per-minute {uploads:g} {switches:g}: give uploads and page changes a minute per "
                       "learner, neither negative and not both 0 (for example 1 2).")
    if a.server_pid is not None and a.server_pid <= 0:
        raise LabError(f"--server-pid {a.server_pid}: a process id is a positive number.")
    extra = []
    if a.workers:
        extra += ["--workers", str(a.workers)]
    if a.torch_threads:
        extra += ["--torch-threads", str(a.torch_threads)]
    res = run(a.learners, timeout=a.timeout, rounds_single=a.rounds, server_args=extra, url=a.url,
              pace=Pace(a.arrive, a.think), server_pid=a.server_pid, capacity=Capacity(uploads, switches))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {a.json}")
    if a.check and not res.get("goal", {}).get("met", False):
        sys.exit(1)


def cmd_handout(a) -> None:
    from lab.handout import write
    print(f"wrote {write(a.url, a.out)}")
