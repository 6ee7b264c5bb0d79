"""Fixtures shared by the Hugging Face I-BERT tests: they skip, saying why, without the hf extra."""

import pytest

HF_MISSING = "the hf extra (torch, transformers) is not installed"


@pytest.fixture(scope="module")
def hf():
    torch = pytest.importorskip("torch", reason=HF_MISSING)
    transformers = pytest.importorskip("transformers", reason=HF_MISSING)
    return torch, transformers


@pytest.fixture(scope="module")
def small(hf):
    """A calibrated random 2-layer IBert (hidden 64), built from an IBertConfig (no download)."""
    from intref.convert.hf_ibert.random_model import random_ibert
    return random_ibert(seed=0)
