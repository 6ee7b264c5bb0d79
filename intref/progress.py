"""Progress of a long command on a terminal: one status line, rewritten in place.

    progress = Progress("golden", stream=sys.stderr)       # silent unless the stream is a terminal
    progress("run", 12, 62, "layer0.attn.q")                # phase, done, total, what
    progress("write", 40, 91, "tensors/x.hex", nbytes=1 << 20)
    progress.close()                                        # ends the line (if one was drawn)

A line shows the phase, ``done/total``, the item, the bytes so far and their rate:

    intref golden: write 40/91 tensors/x.hex  12.6 MB  48.2 MB/s

It is redrawn at most every ``interval`` seconds (and on the last item of a phase), so a fast run
costs nothing. Nothing is written when the stream is not a terminal or ``enabled`` is False
(``--quiet``): logs and pipes stay clean.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, command: str, *, stream=None, enabled=None, interval: float = 0.2, clock=time.monotonic):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else bool(enabled)
        self.command, self.interval, self.clock = command, interval, clock
        self.start = clock()
        self.last = None
        self.nbytes = 0
        self.width = 0

    def __call__(self, phase: str, done: int, total: int, what: str = "", *, nbytes: int = 0) -> None:
        self.nbytes += nbytes
        if not self.enabled:
            return
        now = self.clock()
        if self.last is not None and now - self.last < self.interval and done < total:
            return
        self.last = now
        rate = self.nbytes / max(now - self.start, 1e-9)
        line = f"intref {self.command}: {phase} {done}/{total} {what[:48]}"
        if self.nbytes:
            line += f"  {_megabytes(self.nbytes)}  {_megabytes(rate)}/s"
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def close(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _megabytes(count: float) -> str:
    return f"{count / 1e6:.1f} MB"
