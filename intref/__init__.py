"""intref: a bit-exact, integer-only golden model of quantized transformers, in pure NumPy.

Layers (see DESIGN.md): ``intref.spec`` (scalar definitions) -> ``intref.kernels`` (NumPy twins)
-> ``intref.quant`` (build time: floats to integer constants) -> ``intref.ops`` -> ``intref.graph``
and ``intref.run`` (the interpreter) -> tools.
"""

from ._version import __version__
from .errors import IntrefError
from .build import GraphBuilder
from .bundle.load import load, save
from .graph import Graph, dequantize
from .interpreter import run

__all__ = ["Graph", "GraphBuilder", "IntrefError", "__version__", "dequantize", "load", "run", "save"]
