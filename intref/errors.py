"""The exceptions intref raises.

Every failure intref detects is an ``IntrefError``. The hierarchy keeps apart the kinds of
failure that TOSA keeps apart:

- ``ArgumentError``: a kernel was called outside its contract (TOSA ``REQUIRE``): wrong dtype,
  mismatched shape, a value outside its declared range. The message names the argument and the
  first offending multi-index.
- ``OverflowCheckError``: under ``overflow="check"`` a result left its declared integer type.
- ``BundleError`` and ``GraphError`` (graph loading, added with the graph layer): an illegal file
  or graph (TOSA ``ERROR_IF``), naming the file, field or node.

The argument errors also derive from the matching built-in (``TypeError`` / ``ValueError``) so
that generic callers can catch them the usual way.
"""

from __future__ import annotations


def format_index(index) -> str:
    """Render a multi-index as ``[i, j, k]`` (a scalar as ``[]``)."""
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


class IntrefError(Exception):
    """Base class of every error intref raises on purpose."""


class ArgumentError(IntrefError):
    """A kernel argument breaks the kernel's contract.

    ``argument`` names the argument, ``index`` is the first offending multi-index (a tuple, or
    ``None`` when the whole argument is wrong) and ``value`` the offending value when there is one.
    """

    def __init__(self, message: str, *, argument: str, index=None, value=None):
        super().__init__(message)
        self.argument = argument
        self.index = None if index is None else tuple(int(i) for i in index)
        self.value = value


class DtypeError(ArgumentError, TypeError):
    """An argument has a dtype the kernel does not accept."""


class ShapeError(ArgumentError, ValueError):
    """An argument's shape does not fit the other arguments."""


class RangeError(ArgumentError, ValueError):
    """A value lies outside the range the kernel requires of it (TOSA's REQUIRE)."""


class OverflowCheckError(IntrefError, ArithmeticError):
    """A result left its declared integer type while the overflow policy was ``check``.

    ``where`` names the kernel or graph node, ``index`` the first offending multi-index,
    ``value`` the exact (unclamped) value and ``lo``/``hi`` the declared range.
    """

    def __init__(self, message: str, *, where: str, index, value: int, lo: int, hi: int):
        super().__init__(message)
        self.where = where
        self.index = tuple(int(i) for i in index)
        self.value = int(value)
        self.lo = int(lo)
        self.hi = int(hi)
