"""A tensor file that a loaded graph still reads: the directory bundle's memory maps.

A directory bundle's tensors are memory-mapped, not copied (loading stays fast and light). A map
reads the file as it is *now*: a file rewritten after load would give other values, and a file
truncated after load would kill the process with SIGBUS on the next read of a lost page. So the
loader records each mapped file's identity and size when it hashes it (``FileStamp.of``), checks
it again once the map is made, and the interpreter checks it before and after every run
(``Graph.check_storage``): a changed file raises ``TensorFileError`` naming it, and no value
read from it is returned.

What is compared: device, inode, size and modification time (ns). A rewrite, a truncation, an
append and a replacement by another file all change at least one of them. Not covered (said in
docs/format.md): a file truncated *during* a run (the check after the run cannot come first),
and a rewrite that restores the old size and modification time on purpose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import TensorFileError


@dataclass(frozen=True)
class FileStamp:
    full_path: str      # the real path that was mapped
    member: str         # the bundle member, as graph.json names it (for messages)
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, full_path: str, member: str, status: os.stat_result) -> "FileStamp":
        return cls(full_path, member, status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)

    def difference(self) -> str:
        """What changed since the stamp was taken ('' when nothing did)."""
        try:
            now = FileStamp.of(self.full_path, self.member, os.stat(self.full_path))
        except OSError as exc:
            return f"it can no longer be read ({exc.strerror or exc})"
        if (now.device, now.inode) != (self.device, self.inode):
            return "it was replaced by another file"
        if now.size != self.size:
            return f"its size went from {self.size} to {now.size} bytes"
        if now.mtime_ns != self.mtime_ns:
            return "it was rewritten (modification time changed)"
        return ""

    def check(self, when: str = "after the bundle was loaded") -> None:
        """Raise ``TensorFileError`` if the file changed since the stamp was taken."""
        change = self.difference()
        if change:
            raise TensorFileError(f"the memory-mapped tensor file changed {when}: {change}; load the bundle "
                                  f"again ({self.full_path})", path=self.member)
