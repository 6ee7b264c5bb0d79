"""The op registry: every op intref runs, by name. Explicit, so the known set is plain to read."""

from __future__ import annotations

from .embedding import Embedding, PositionIds, RelativeBuckets
from .gelu import IGelu
from .gemm import Linear, MatMul
from .groupwise import GroupLinear
from .layernorm import ILayerNorm
from .pool import MaskedMeanPool
from .requant import Requantize, ResidualAdd
from .shape import Gather, MergeHeads, Reshape, Slice, SplitHeads, Transpose
from .softmax import ISoftmax, PaddingMask
from .tokenwise import TokenQuantize, TokenRequantize, TokenScale

REGISTRY = {op.name: op for op in (
    Embedding(), PositionIds(), RelativeBuckets(),
    Linear(), MatMul(),
    Requantize(), ResidualAdd(),
    IGelu(), ISoftmax(), PaddingMask(), ILayerNorm(), MaskedMeanPool(),
    Reshape(), Transpose(), SplitHeads(), MergeHeads(), Slice(), Gather(),
    GroupLinear(), TokenScale(), TokenQuantize(), TokenRequantize(),   # ZeroQuant schemes (issue 12)
)}
