"""The toolkit for testing an integer kernel, or a port of one, against intref bit for bit.

- ``assert_identical(got, expected)``: what every intref test uses to compare arrays (dtype, shape,
  every element; names the first differing multi-index).
- ``assert_bit_exact(port, kernel, *args, **kwargs)``: run a port (a C model, a simulator wrapper, a
  GPU kernel behind a Python call) and the intref kernel on the same arguments and demand the same
  integers; on failure the message names the first differing multi-index, both values in decimal and
  in two's-complement hex, the differing bits, the mismatch count and the inputs at that index.
- Hypothesis strategies that draw legal inputs for every kernel, edges included:
  ``requantize_cases``, ``matmul_operands``, ``isqrt_inputs``, ``gelu_cases``, ``exp_cases``,
  ``softmax_params``, ``softmax_cases``, ``layernorm_cases``. Each draws a ``dict`` of keyword
  arguments: ``kernel(**case)`` and ``assert_bit_exact(port, kernel, **case)`` work as they are.

The strategies need ``hypothesis`` (the ``test`` extra); they are imported on first use, so
``import intref`` and ``assert_identical`` / ``assert_bit_exact`` work without it.
See docs/testing-your-port.md.

    assertions.py            ``assert_identical``, ``assert_bit_exact``, ``assert_graph_error``
    strategies.py            requantize, matmul and isqrt cases, and the shared drawing helpers
    strategies_nonlinear.py  GELU, exp, softmax and LayerNorm cases
    twins.py                 the spec applied to whole arrays, and ``assert_equals_spec``: what every
                             kernel test compares a kernel against
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .assertions import assert_bit_exact, assert_graph_error, assert_identical

if TYPE_CHECKING:   # for readers and type checkers; at run time ``__getattr__`` imports these on first use
    from .strategies import isqrt_inputs, matmul_operands, requantize_cases
    from .strategies_nonlinear import exp_cases, gelu_cases, layernorm_cases, softmax_cases, softmax_params

__all__ = ["assert_bit_exact", "assert_graph_error", "assert_identical", "exp_cases", "gelu_cases", "isqrt_inputs",
           "layernorm_cases", "matmul_operands", "requantize_cases", "softmax_cases", "softmax_params"]

_STRATEGIES = {"requantize_cases": "strategies", "matmul_operands": "strategies", "isqrt_inputs": "strategies",
               "gelu_cases": "strategies_nonlinear", "exp_cases": "strategies_nonlinear",
               "softmax_params": "strategies_nonlinear", "softmax_cases": "strategies_nonlinear",
               "layernorm_cases": "strategies_nonlinear"}


def __getattr__(name):
    """Import the hypothesis strategies lazily: ``import intref`` never imports hypothesis."""
    if name in _STRATEGIES:
        import importlib

        return getattr(importlib.import_module(f".{_STRATEGIES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
