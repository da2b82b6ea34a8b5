"""Progress of long work for the command line, silent everywhere else.

Library loops that can take minutes wrap their iterable in `track(...)`; it is a plain
pass-through until a command calls `enable()` (every `pose-lab` subcommand does), so the
app and the tests print nothing.

Enabled, on a terminal: a tqdm bar with rate and ETA (on stderr). Not on a terminal (CI,
a log file, a pipe): a plain line every `every` seconds and one at the end, e.g.

    eval crops test: 412/1000 (41%), 0:21 elapsed, ETA 0:30, 19.6 images/s

Set POSE_LAB_PROGRESS=bar|lines|off to force a style; POSE_LAB_PROGRESS_EVERY=seconds.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_STYLE: str | None = None            # None: disabled; "bar" or "lines"
_EVERY = 10.0


def enable(stream=None, style: str | None = None, every: float | None = None) -> str | None:
    """Turn progress on for this process; returns the style chosen ("bar", "lines" or None)."""
    global _STYLE, _EVERY
    stream = stream or sys.stderr
    style = style or os.environ.get("POSE_LAB_PROGRESS") or ("bar" if _isatty(stream) else "lines")
    _STYLE = None if style == "off" else style if style in ("bar", "lines") else "lines"
    _EVERY = float(every if every is not None else os.environ.get("POSE_LAB_PROGRESS_EVERY", 10.0))
    return _STYLE


def disable() -> None:
    global _STYLE
    _STYLE = None


def enabled() -> bool:
    return _STYLE is not None


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def clock(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One unit of long work: update(n) as it goes, close() at the end (or use `with`).
    Does nothing while progress is disabled."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", initial: int = 0, leave: bool = True):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.postfix = ""
        self.style = _STYLE
        self._bar = None
        self._t0 = time.perf_counter()
        self._start_n = initial
        self._last = self._t0
        self._leave = leave
        self._printed = False
        if self.style == "bar":
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                             dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
        elif self.style == "lines":
            now = time.perf_counter()
            if now - self._last >= _EVERY:
                self._last = now
                self._printed = True
                self._line()

    def write(self, text: str) -> None:
        """A line of output that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def line(self) -> str:
        elapsed = time.perf_counter() - self._t0
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            eta = (self.total - self.n) / rate if rate > 0 else float("nan")
            head = f"{self.desc}: {self.n}/{self.total} ({100 * self.n / self.total:.0f}%)"
            tail = f", ETA {clock(eta)}" if self.n < self.total else ""
        else:
            head, tail = f"{self.desc}: {self.n}", ""
        extra = f", {self.postfix}" if self.postfix else ""
        return f"{head}, {clock(elapsed)} elapsed{tail}, {rate:.3g} {self.unit}/s{extra}"

    def _line(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.style == "lines" and (self._leave or self._printed):
            self._line()           # a short inner loop (validation in training) stays quiet
        self.style = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """`iterable`, reporting progress while enabled (a pass-through otherwise)."""
    if _STYLE is None:
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)          # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(total, desc, unit, leave=False) as p:
        for item in iterable:
            yield item
            p.update(1)
