"""``intref verify``: compare a hardware dump with a golden set, node by node, bit for bit.

    session.py  ``verify(golden_dir, hw_dir, ...)``: the walk over the nodes, isolation re-runs
    inputs.py   the golden manifest and the hardware's files, read and checked
    compare.py  one tensor against its golden value: first divergence, counts, differing bits
    hints.py    why a tensor may differ (a tie rounded the other way, wrap vs saturate, byte order)
    report.py   the verdicts, as text, JSON and JUnit XML, and the exit code

See docs/verify.md.
"""

from .inputs import VerifyInputError
from .report import VerifyReport
from .session import verify

__all__ = ["VerifyInputError", "VerifyReport", "verify"]
