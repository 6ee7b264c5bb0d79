"""A one-line progress display for long runs on a terminal: nodes done, bytes read, rate.

Written to a stream (stderr) with a carriage return, at most a few times a second, and cleared at
the end; ``for_terminal(stream, quiet)`` gives None (no display) when the stream is not a terminal
or ``quiet`` is asked, so logs and pipes stay clean. Time is display only: nothing compared
depends on it.
"""

from __future__ import annotations

import time
from typing import Optional


class Progress:
    def __init__(self, stream, label: str = "verify", interval: float = 0.2):
        self.stream, self.label, self.interval = stream, label, interval
        self.total, self.done, self.started, self.shown, self.width = 0, 0, 0.0, 0.0, 0

    def start(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def update(self, name: str, bytes_read: int) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.shown < self.interval and self.done < self.total:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-9)
        line = (f"{self.label}: node {self.done}/{self.total} {name[:40]}, {_size(bytes_read)} read, "
                f"{_size(int(bytes_read / elapsed))}/s, {elapsed:.0f} s")
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def finish(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def for_terminal(stream, quiet: bool, label: str = "verify") -> Optional[Progress]:
    """A ``Progress`` on ``stream`` when it is a terminal and ``quiet`` is not asked, else None."""
    isatty = getattr(stream, "isatty", None)
    return Progress(stream, label) if not quiet and callable(isatty) and isatty() else None
