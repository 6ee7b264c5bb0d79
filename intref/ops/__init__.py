"""The op registry: every op intref runs, by name. Explicit, so the known set is plain to read."""

from __future__ import annotations

from .embedding import Embedding, PositionIds
from .requant import Requantize, ResidualAdd
from .shape import Gather, MergeHeads, Reshape, Slice, SplitHeads, Transpose

REGISTRY = {op.name: op for op in (
    Embedding(), PositionIds(),
    Requantize(), ResidualAdd(),
    Reshape(), Transpose(), SplitHeads(), MergeHeads(), Slice(), Gather(),
)}
