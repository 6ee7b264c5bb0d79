"""Build time: float scales become integer constants (floats are allowed only here).

``dyadic`` turns a real ratio into a 31-bit multiplier and a shift; ``quantize_symmetric`` and
``pack_int4`` quantize and store weights; each ``prepare_<kernel>`` turns float scales into that
kernel's frozen params object of integers plus ``out_scale`` metadata.
"""

from .dyadic import dyadic, dyadic_value
from .gelu import prepare_gelu
from .groupwise import prepare_group_linear, quantize_input_groups, quantize_row_groups
from .int4 import pack_int4, unpack_int4
from .layernorm import layernorm_error_bound, prepare_layernorm
from .softmax import prepare_softmax
from .symmetric import quantize_symmetric

__all__ = ["dyadic", "dyadic_value", "layernorm_error_bound", "pack_int4", "prepare_gelu", "prepare_group_linear",
           "prepare_layernorm", "prepare_softmax", "quantize_input_groups", "quantize_row_groups",
           "quantize_symmetric", "unpack_int4"]
