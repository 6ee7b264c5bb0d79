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


# --- graphs and bundles -------------------------------------------------------------------------

class FileFieldError(IntrefError):
    """A file is unreadable or malformed. ``path`` names the file and ``field`` the field inside it
    (a JSON field path, a tensor name, a line) where there is one; the message starts with both."""

    def __init__(self, message: str, *, path: str = "", field: str = ""):
        where = ": ".join(p for p in (str(path), field) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = str(path)
        self.field = field


class BundleError(FileFieldError):
    """A bundle on disk is unreadable or malformed. ``path`` is the file (a bundle member such as
    ``graph.json`` or ``tensors/w.npy``) and ``field`` the JSON field path where there is one."""


class BundleFormatError(BundleError):
    """Not a bundle: no graph.json, not a zip or directory, unparseable JSON, unknown format version."""


class SchemaError(BundleError):
    """A graph.json field is missing, has the wrong type or an illegal value."""


class TensorFileError(BundleError):
    """A tensor file is missing, truncated, of the wrong dtype or shape, pickled, or fails its sha256."""


class UnsafePathError(BundleError):
    """A file reference would leave the bundle (absolute path, ``..``, a link)."""


class GraphError(IntrefError):
    """The graph is illegal (TOSA's ERROR_IF). ``node`` names the offending node (or value/tensor)."""

    def __init__(self, message: str, *, node: str = ""):
        super().__init__(f"node {node!r}: {message}" if node else message)
        self.node = node


class UnknownOpError(GraphError):
    """A node names an op intref does not know; the message lists the known ones."""


class DuplicateNameError(GraphError):
    """Two nodes, or two values/tensors, share a name."""


class MissingValueError(GraphError):
    """A node input, or a graph output, names no graph input, tensor or node output."""


class CycleError(GraphError):
    """The nodes cannot be put in topological order."""


class UnusedValueError(GraphError):
    """A tensor or a node's results are never used by anything that reaches a graph output."""


class TypeMismatchError(GraphError):
    """An op got an input of an integer type it does not accept, or declares an illegal output type."""


class ShapeMismatchError(GraphError):
    """Shapes of an op's inputs do not fit each other or its attributes."""


class AttributeError_(GraphError):
    """An attribute is missing, unknown, of the wrong kind or out of its allowed range.

    (Trailing underscore: not Python's built-in ``AttributeError``.)"""


class RangeAnalysisError(GraphError):
    """Load-time range analysis found inputs for which a kernel's intermediates could leave int64."""


class FeedError(IntrefError):
    """A feed given to ``run`` is missing, unexpected, or has the wrong dtype, shape or range."""


# --- float checkpoints and text (post-training quantization) ---------------------------------------

class CheckpointError(FileFieldError):
    """A float checkpoint (config.json, model.safetensors, vocab.txt) is missing, inconsistent or
    malformed; ``path`` names the file and ``field`` the config key or tensor."""


class SafetensorsError(CheckpointError):
    """A safetensors file is truncated, or its header lies (sizes, offsets, dtypes, shapes)."""


class VocabularyError(CheckpointError):
    """A WordPiece vocabulary is unreadable, has duplicate tokens, or lacks a special token."""


class TextError(FileFieldError):
    """Input text cannot be used: an empty or non-UTF-8 text file, or a sentence longer than the
    model's maximum length. ``index`` is the sentence's index (0-based) when one is at fault."""

    def __init__(self, message: str, *, path: str = "", field: str = "", index=None):
        super().__init__(message, path=path, field=field)
        self.index = None if index is None else int(index)
