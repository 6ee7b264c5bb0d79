"""all-MiniLM-L6-v2 end to end on real sentences: checkpoint -> calibration -> integer bundle ->
pooled embeddings within the issue's targets of the float model (cosine mean >= 0.985, 5th
percentile >= 0.97), on a slice small enough for the suite (48 calibration, 16 test sentences).
Skipped, saying why, when the MiniLM package or the VADER sentences are absent."""

from __future__ import annotations

import pytest

import intref
from intref.convert.ptq import convert_ptq, cosine_summary, integer_embeddings, load_checkpoint


@pytest.fixture(scope="module")
def minilm(minilm_slice):
    path, calib, test = minilm_slice(48, 16)
    return load_checkpoint(path), calib, test


def test_minilm_integer_embeddings_meet_the_target(minilm, tmp_path):
    ckpt, calib, test = minilm
    graph, report = convert_ptq(ckpt, calib)
    assert report["sentences"] == 48 and report["smoothquant"] == 0.9
    intref.save(graph, tmp_path / "minilm.zip")
    loaded = intref.load(tmp_path / "minilm.zip")
    assert loaded.may_overflow == ()
    cos = cosine_summary(ckpt.embed(test), integer_embeddings(loaded, ckpt, test))
    assert cos["mean"] >= 0.985 and cos["p5"] >= 0.97, cos
