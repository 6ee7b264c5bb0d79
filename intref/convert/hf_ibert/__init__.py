"""The HF ``transformers`` I-BERT import and its cross-check against the reference.

    convert.py       ``convert_hf_ibert(model)`` / ``load_hf_model(dir)``: a checkpoint as an intref graph
    derivation.py    the integer constants, derived with the reference's own float32 arithmetic
    crosscheck.py    ``crosscheck_hf_ibert(model, graph, batches)``: intref against the reference's run
    capture.py       what the reference computes at every quantization point, read by hooks
    emulate.py       the reference's arithmetic replayed step by step, to explain a difference
    artifacts.py     the known causes of a difference (float32 drift of the reference), labelled
    report.py        the cross-check's per-node figures
    random_model.py  seeded random I-BERT checkpoints for tests and benchmarks

``torch`` and ``transformers`` (the ``hf`` extra) are needed by the cross-check modules, not by
``convert_hf_ibert`` on an already loaded model.
"""

from .convert import convert_hf_ibert, load_hf_model

__all__ = ["convert_hf_ibert", "load_hf_model"]
