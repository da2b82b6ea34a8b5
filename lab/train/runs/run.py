"""One browser training run: a background thread that waits its turn in the queue, trains
the stages of its plan with `lab.train.loop.train`, and keeps its folder up to date.

A `BrowserRun` owns a folder `<runs_dir>/<id>/`:

  status.json        label, state, settings, progress, history, best epoch, error (atomic writes)
  pose.safetensors   the best good checkpoint so far (atomic copy): every page's model choice
                     lists it as soon as it exists, and a cancelled or failed run keeps it
  live.png           a heatmap of one validation image, redrawn after every epoch
  detector/ spatial/ joint/    each stage's run folder (`lab.train.loop.train`)
  error.log          the traceback, when a run failed for an unexpected reason

"Best" means: among checkpoints of the run's final kind (with the spatial model once a
spatial stage has produced one), the highest validation PCK@0.2 of the model's output
(the marginal when there is a spatial model, else the unary). Checkpoints are only ever
picked on the validation split, never on the test set.

Training threads run at a lower CPU priority than the learners' sessions (Linux), so the
pages stay responsive while a run trains. Under torch's OpenMP backend the thread count is
a per-thread setting, so the run's own thread sets it (`train_threads`) and the pages'
model calls keep theirs. `lab.train.loop.train` reseeds torch's global generator each
epoch, so two runs training at the same time are not bit-reproducible (they are still
correct and never touch each other's files).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import shutil
import threading
import time
import traceback
from pathlib import Path

from lab.config import DetectorConfig, SpatialConfig, TrainConfig
from lab.errors import LabError
from lab.train.loop import train
from lab.train.runs.live import live_heatmap, save_png
from lab.train.runs.queue import QUEUE
from lab.train.runs.settings import RunSettings, open_cache, stage_plan, train_threads
from lab.train.runs.store import (
    CANCEL,
    HOST,
    LIVE,
    LOCK,
    MAX_LABEL,
    POSE,
    REGISTRY,
    STATUS,
    clean_label,
    copy_atomic,
    jsonable,
    statuses,
    write_json,
)

MAX_STEP_POINTS = 2000      # batch losses kept for the live chart (thinned evenly beyond that)
TRAIN_NICE = 10             # how much lower a training thread's CPU priority is (Linux)


def _lower_priority() -> None:
    """This thread (and the torch worker threads it starts) at a lower CPU priority, so
    learners' pages stay quick while it trains. Linux only; elsewhere nothing happens."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + TRAIN_NICE))
    except (AttributeError, OSError):
        pass


class BrowserRun:
    """One training run in a background thread. Never raises from the thread: every
    failure ends in status.json as state "failed" with a message."""

    def __init__(self, settings: RunSettings, runs_dir: Path):
        settings = dataclasses.replace(settings.check(), label=clean_label(settings.label))
        self.settings = settings
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.id, self.path = self._make_folder()
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._nan = False
        self.plan = stage_plan(settings.epochs, settings.spatial)
        self.total_epochs = sum(n for _, n in self.plan)
        self.best_score: tuple | None = None
        self._stage_best: dict[str, float] = {}
        self._stage = None
        self._done_epochs = 0
        self._val_image = None
        self._last_write = 0.0
        label = settings.label or settings.default_label()
        self.status = {
            "id": self.id, "label": label, "state": "queued", "error": None, "cancel_requested": False,
            "settings": dataclasses.asdict(settings), "plan": self.plan,
            "created": time.time(), "updated": time.time(), "pid": os.getpid(), "host": HOST,
            "progress": {"fraction": 0.0, "stage": None, "epoch": 0, "epochs": self.total_epochs,
                         "step": 0, "steps": 0},
            "history": [], "steps": [], "best": None, "live": None, "images_per_s": None}
        self._write()

    def _make_folder(self) -> tuple[str, Path]:
        while True:
            rid = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            path = self.runs_dir / rid
            try:
                path.mkdir()
                return rid, path
            except FileExistsError:
                continue

    # -------------------------------------------------------------- control
    def start(self) -> "BrowserRun":
        """Join the queue (LabError when it is full or training is off) and start the thread,
        which waits for its turn."""
        QUEUE.admit(self)
        with LOCK:
            REGISTRY[self.id] = self
        self.thread = threading.Thread(target=self._main, name=f"pose-lab-run-{self.id}", daemon=True)
        self.thread.start()
        return self

    def cancel(self) -> None:
        """Leave the queue at once, or stop at the next training step; the best checkpoint is kept."""
        self._stop.set()
        self._update(cancel_requested=True)
        QUEUE.wake()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    @property
    def state(self) -> str:
        with self._lock:
            return self.status["state"]

    def snapshot(self) -> dict:
        with self._lock:
            st = json.loads(json.dumps(self.status, default=jsonable))
        st["queue_position"] = QUEUE.position(self.id, self.runs_dir) if st["state"] == "queued" else None
        return st

    def _update(self, write: bool = True, **kw) -> None:
        with self._lock:
            self.status.update(kw)
            self.status["updated"] = time.time()
        if write:
            self._write()

    def _write(self) -> None:
        with self._lock:
            write_json(self.path / STATUS, self.status)
            self._last_write = time.monotonic()

    # -------------------------------------------------------------- the thread
    def _main(self) -> None:
        _lower_priority()
        if not QUEUE.wait_turn(self, self._stop):
            self._update(state="cancelled", cancel_requested=True)
            return
        try:
            threads = train_threads(self.settings)
            self._threads = threads
            self._update(state="running", train_started=time.time(), threads=threads)
            self._train()
        except LabError as e:
            self._update(state="failed", error=str(e))
        except Exception as e:                      # a bug: keep the traceback, show a sentence
            (self.path / "error.log").write_text(traceback.format_exc())
            self._update(state="failed", error=f"training stopped by an unexpected error "
                                               f"({type(e).__name__}: {e}); details in {self.path / 'error.log'}.")
        finally:
            QUEUE.done(self.id)

    def _train(self) -> None:
        s = self.settings
        cache = open_cache(s.cache)
        data = dataclasses.replace(cache.data, sigma=float(s.sigma))
        tr, va = cache["train"], cache["val"]
        va = va.subset(s.val_size) if s.val_size else va
        self._val_image = va.images[0]
        det = DetectorConfig.small()
        sp = SpatialConfig(graph=s.graph, heatmap_size=data.heatmap_size)
        init = None
        self._done_epochs = 0
        for stage, epochs in self.plan:
            self._stage = stage
            cfg = TrainConfig(stage=stage, epochs=epochs, batch_size=s.batch_size, lr=s.lr, warmup=20,
                              train_limit=s.train_size, seed=s.seed, device=s.device,
                              threads=getattr(self, "_threads", 0) or train_threads(s))
            self._progress(stage=stage)
            run = train(cfg, data, tr, va, self.path / stage, det=det, sp=sp, init=init,
                        callback=self._on_event, should_stop=self._should_stop)
            if self._nan:
                raise LabError(f"the loss became NaN or infinite in the {stage} stage: the learning "
                               f"rate ({s.lr:g}) is probably too high. The last good checkpoint is kept.")
            if run.stopped:
                self._update(state="cancelled")
                return
            best = self.path / stage / "best.safetensors"
            if not best.is_file():
                raise LabError(f"the {stage} stage produced no usable checkpoint.")
            init = best
        self._progress(fraction=1.0)
        n = min(s.train_size or len(tr), len(tr))
        self._update(state="done", finished=time.time(), train_images=n * sum(e for _, e in self.plan))

    def _should_stop(self) -> bool:
        if self.cancel_requested_elsewhere():
            self._stop.set()
            self._update(write=False, cancel_requested=True)
        return self._stop.is_set() or self._nan

    def cancel_requested_elsewhere(self) -> bool:
        """Another server sharing the runs directory asked this run to stop (`cancel_run`)."""
        return (self.path / CANCEL).exists()

    def _progress(self, **kw) -> None:
        with self._lock:
            self.status["progress"].update(kw)

    def _on_event(self, e: dict) -> None:
        if e["event"] == "step":
            frac = (self._done_epochs + e["epoch"] + e["step"] / e["steps"]) / self.total_epochs
            if not math.isfinite(e["loss"]):
                self._nan = True
            stride = max(1, e["steps"] * self.total_epochs // MAX_STEP_POINTS)
            if e["step"] % stride == 0 or e["step"] == e["steps"]:
                with self._lock:
                    self.status["steps"].append([round(self._done_epochs + e["epoch"] + e["step"] / e["steps"], 4),
                                                 e["loss"] if math.isfinite(e["loss"]) else None,
                                                 self._stage])
            self._progress(fraction=min(frac, 1.0), epoch=self._done_epochs + e["epoch"] + 1,
                           step=e["step"], steps=e["steps"])
            self._update(write=time.monotonic() - self._last_write > 0.5)   # status.json at most 2x/s
            return
        # end of an epoch: the stage's model.safetensors now holds exactly this epoch
        model = e.pop("model")
        stage_epoch = e["epoch"]
        if stage_epoch == dict(self.plan)[self._stage]:
            self._done_epochs += stage_epoch
        val = {k: float(v) for k, v in e["val_pck"].items()}
        row = {"stage": self._stage, "epoch": self._global_epoch(stage_epoch), "stage_epoch": stage_epoch,
               "loss": float(e["loss"]), "val_pck": val, "seconds": float(e["seconds"]),
               "images_per_s": float(e["images_per_s"])}
        row["val_loss"] = float(e["val_loss"]) if e.get("val_loss") is not None else None
        good = math.isfinite(row["loss"]) and all(math.isfinite(v) for v in val.values())
        if not good:
            self._nan = True
        else:
            self._keep_if_best(row)
            try:
                live = live_heatmap(model, self._val_image)
                save_png(self.path / LIVE, live["overlay"])
                self._update(write=False, live={"epoch": row["epoch"], "stage": self._stage,
                                                "kind": live["kind"], "top": live["top"], "file": LIVE})
            except Exception:                       # a picture must never stop training
                pass
        with self._lock:
            self.status["history"].append(row)
        self._update(images_per_s=row["images_per_s"])

    def _global_epoch(self, stage_epoch: int) -> int:
        before = 0
        for st, n in self.plan:
            if st == self._stage:
                return before + stage_epoch
            before += n
        return stage_epoch

    def _keep_if_best(self, row: dict) -> None:
        src = self.path / self._stage / "model.safetensors"
        with_spatial = self._stage != "detector"
        headline = row["val_pck"].get("marginal" if with_spatial else "unary", 0.0)
        stage_best = self.path / self._stage / "best.safetensors"
        prev_stage = self._stage_best.get(self._stage)
        if prev_stage is None or headline >= prev_stage:
            copy_atomic(src, stage_best)
            self._stage_best[self._stage] = headline
        score = (with_spatial, headline)
        if self.best_score is None or score >= self.best_score:
            copy_atomic(src, self.path / POSE)
            self.best_score = score
            self._update(write=False, best={"epoch": row["epoch"], "stage": self._stage,
                                            "val_pck": row["val_pck"], "headline": headline,
                                            "method": "marginal" if with_spatial else "unary"})


def start_run(settings: RunSettings, runs_dir: Path) -> BrowserRun:
    """Create a run folder with a unique id and a label no other run there has, and start it."""
    settings.check()
    with LOCK:                                     # label check + folder creation, one tab at a time
        label = clean_label(settings.label) or settings.default_label()
        taken = {s.get("label") for s in statuses(Path(runs_dir))}
        base, n = label[:MAX_LABEL - 5], 2
        while label in taken:
            label, n = f"{base} ({n})", n + 1
        run = BrowserRun(dataclasses.replace(settings, label=label), runs_dir)
    try:
        return run.start()
    except LabError:
        shutil.rmtree(run.path, ignore_errors=True)     # refused: leave nothing behind
        raise
