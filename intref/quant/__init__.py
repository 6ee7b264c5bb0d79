"""Build time: float scales become integer constants (floats are allowed only here).

``dyadic`` turns a real ratio into a 31-bit multiplier and a shift; ``quantize_symmetric``
quantizes weights; each ``prepare_<kernel>`` turns float scales into that kernel's frozen params
object of integers plus ``out_scale`` metadata. ``pack_int4`` / ``unpack_int4`` (how int4 weights
are stored) live with the bundle storage, ``intref.bundle.int4``, and are re-exported here.
"""

from .dyadic import dyadic, dyadic_value
from .gelu import prepare_gelu
from .groupwise import prepare_group_linear, quantize_input_groups, quantize_row_groups
from .layernorm import layernorm_error_bound, prepare_layernorm
from .softmax import prepare_softmax
from .symmetric import quantize_symmetric

__all__ = ["dyadic", "dyadic_value", "layernorm_error_bound", "pack_int4", "prepare_gelu", "prepare_group_linear",
           "prepare_layernorm", "prepare_softmax", "quantize_input_groups", "quantize_row_groups",
           "quantize_symmetric", "unpack_int4"]
_STORAGE = ("pack_int4", "unpack_int4")


def __getattr__(name):
    """``pack_int4`` / ``unpack_int4`` from ``intref.bundle.int4``, on first use: quant sits below the
    bundle package (whose loader imports the ops), so it must not import it while loading."""
    if name in _STORAGE:
        from ..bundle import int4

        return getattr(int4, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
