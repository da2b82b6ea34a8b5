"""The server's settings, in one place: what `pose-lab app` flags and POSE_LAB_* variables set.

`pose-lab app` turns its flags into these environment variables before it hands over to
Streamlit, so the app (every session of one server process) reads them here, once.

  POSE_LAB_RUNS              folder of the Retrain page's runs
                             (default: runs/browser in a checkout, else ~/.local/share/pose-lab/runs)
  POSE_LAB_MAX_TRAININGS     K: browser trainings that run at once; later ones queue (default 1)
  POSE_LAB_MAX_QUEUED        trainings that may wait in the queue (default 8)
  POSE_LAB_WORKERS           model calls (forward passes) that run at once, all sessions
                             together; the others wait their turn (default: one per core)
  POSE_LAB_TORCH_THREADS     torch threads of each model call (default 1: with several learners,
                             one thread per call and one call per core beats threads that wait
                             for each other on busy cores)
  POSE_LAB_UPLOAD_MB         largest photo upload, in MB (default 10)
  POSE_LAB_UPLOAD_MEGAPIXELS largest photo, in megapixels, checked before decoding (default 24)

Uploads are decoded from memory and never written to disk.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lab.resources import CHECKOUT

ENV = {
    "runs_dir": "POSE_LAB_RUNS",
    "max_trainings": "POSE_LAB_MAX_TRAININGS",
    "max_queued": "POSE_LAB_MAX_QUEUED",
    "workers": "POSE_LAB_WORKERS",
    "torch_threads": "POSE_LAB_TORCH_THREADS",
    "upload_mb": "POSE_LAB_UPLOAD_MB",
    "upload_megapixels": "POSE_LAB_UPLOAD_MEGAPIXELS",
}


def default_runs_dir() -> Path:
    if CHECKOUT is not None:
        return CHECKOUT / "runs" / "browser"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "pose-lab" / "runs"


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    runs_dir: Path
    max_trainings: int = 1
    max_queued: int = 8
    workers: int = 1
    torch_threads: int = 2
    upload_mb: int = 10
    upload_megapixels: float = 24.0

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 2 ** 20)

    @property
    def upload_pixels(self) -> int:
        return int(self.upload_megapixels * 1e6)

    def upload_help(self) -> str:
        """The limits, as the uploader's help states them."""
        return (f"Up to {self.upload_mb} MB and {self.upload_megapixels:g} megapixels (JPEG, PNG or WebP). "
                "Decoded in the server's memory only, never stored on disk, and forgotten when you close "
                "the tab. EXIF rotation is applied; grayscale and transparent images are converted to RGB.")

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        n = cores()
        workers = _int(env, ENV["workers"], n, lo=1, hi=64)
        return cls(
            runs_dir=Path(env.get(ENV["runs_dir"]) or default_runs_dir()).expanduser(),
            max_trainings=_int(env, ENV["max_trainings"], 1, lo=0, hi=64),
            max_queued=_int(env, ENV["max_queued"], 8, lo=0, hi=1000),
            workers=workers,
            torch_threads=_int(env, ENV["torch_threads"], 1, lo=1, hi=256),
            upload_mb=_int(env, ENV["upload_mb"], 10, lo=1, hi=1000),
            upload_megapixels=_float(env, ENV["upload_megapixels"], 24.0, lo=0.01, hi=1000.0),
        )


def _int(env, name: str, default: int, lo: int, hi: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        v = int(text)
    except ValueError:
        raise SystemExit(f"pose-lab: {name}={text!r} is not a whole number.")
    if not lo <= v <= hi:
        raise SystemExit(f"pose-lab: {name}={v} is outside {lo}..{hi}.")
    return v


def _float(env, name: str, default: float, lo: float, hi: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        v = float(text)
    except ValueError:
        raise SystemExit(f"pose-lab: {name}={text!r} is not a number.")
    if not lo <= v <= hi:
        raise SystemExit(f"pose-lab: {name}={v:g} is outside {lo:g}..{hi:g}.")
    return v


def _settings() -> Settings:
    """The process's settings. `pose-lab app` has already refused bad values; a server started
    another way says which variable is wrong and uses the defaults instead of failing."""
    try:
        return Settings.from_env()
    except SystemExit as e:
        import sys
        print(f"{e} Using the defaults.", file=sys.stderr)
        return Settings.from_env({k: v for k, v in os.environ.items() if k not in ENV.values()})


SETTINGS = _settings()
