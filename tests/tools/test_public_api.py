"""Every name the documentation shows imports: README.md, docs/*.md, golden/README.md, examples/ and
notebooks/ name import paths that users copy, so a move of code must keep each one working.

Two checks: the documented public surface, listed here by hand (DESIGN's "Public surface" included),
and a scan of the documentation itself, which resolves every dotted ``intref.…`` name and every
``from intref… import …`` line it shows, so a name added to the docs is held to the same rule."""

import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "intref": ["load", "save", "run", "dequantize", "IntrefError", "GraphBuilder", "Graph", "__version__"],
    "intref.kernels": ["requantize", "add_requantized", "matmul", "isqrt", "i_gelu", "i_exp", "i_softmax",
                       "i_layernorm"],
    "intref.spec": ["requantize", "matmul", "isqrt", "i_gelu", "i_exp", "i_softmax", "i_layernorm"],
    "intref.quant": ["dyadic", "quantize_symmetric", "pack_int4", "unpack_int4", "prepare_gelu", "prepare_softmax",
                     "prepare_layernorm"],
    "intref.errors": ["IntrefError", "BundleError", "GraphError", "RangeError", "OverflowCheckError"],
    "intref.bundle": ["load", "save", "graph_sha256"],
    "intref.golden": ["write_golden", "GoldenError", "canonical_bytes", "Layout", "encode_text", "decode_text",
                      "encode_bin", "decode_bin"],
    "intref.golden.vectors": ["Layout", "decode_text", "decode_bin", "encode_text", "encode_bin"],
    "intref.vectors": ["Layout", "decode_text", "decode_bin", "encode_text", "encode_bin"],
    "intref.verify": ["verify", "VerifyInputError", "VerifyReport"],
    "intref.testing": ["assert_bit_exact", "assert_identical", "assert_graph_error", "requantize_cases",
                       "matmul_operands", "isqrt_inputs", "gelu_cases", "exp_cases", "softmax_params",
                       "softmax_cases", "layernorm_cases"],
    "intref.interpreter": ["run"],
    "intref.cli": ["main"],
    "intref.models.demo": ["make_demo", "token_batch"],
    "intref.models.demo_golden": ["write_demo", "write_demo_golden"],
    "intref.models.float_encoder": ["forward"],
    "intref.models.ibert": ["build_ibert_encoder"],
    "intref.convert.hf_ibert": ["convert_hf_ibert", "load_hf_model"],
    "intref.convert.hf_crosscheck": ["crosscheck_hf_ibert"],
    "intref.convert.minilm": ["forward", "batches", "calibrate", "load_minilm_as_ibert", "load_minilm_bert",
                              "read_sentences"],
}
NEEDS_HF = ("intref.convert.hf_crosscheck", "intref.convert.hf_ibert.crosscheck")
DOCS = [ROOT / "README.md", ROOT / "golden" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "examples").glob("*.py")), *sorted((ROOT / "notebooks").glob("*.ipynb"))]


def needs_hf(module: str) -> None:
    if module.startswith(NEEDS_HF):
        pytest.importorskip("torch")
        pytest.importorskip("transformers")


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_the_documented_public_surface_imports(module):
    needs_hf(module)
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


def doc_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
    return path.read_text()


def resolve(dotted: str):
    """``intref.a.b.c``: import the longest module prefix, then walk the attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if not ".".join(parts[:cut]).startswith(exc.name or "\0"):
                raise
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(dotted)


def documented_names():
    names = set()
    for path in DOCS:
        text = doc_text(path)
        for module, imported in re.findall(r"from (intref[\w.]*) import ([\w, ]+)", text):
            names.update(f"{module}.{name.strip()}" for name in imported.split(",") if name.strip())
        names.update(re.findall(r"`(intref(?:\.\w+)+)", text))
        names.update(re.findall(r"python -m (intref(?:\.\w+)*)", text))
    return sorted(names)


def test_the_scan_finds_the_names_the_docs_show():
    names = documented_names()
    assert {"intref.verify.verify", "intref.golden.write_golden", "intref.testing.assert_bit_exact",
            "intref.convert.hf_ibert.convert_hf_ibert", "intref.quant.unpack_int4"} <= set(names)
    assert len(names) >= 30


@pytest.mark.parametrize("dotted", documented_names())
def test_every_name_the_docs_show_resolves(dotted):
    needs_hf(dotted)
    resolve(dotted)
