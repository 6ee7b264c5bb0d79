"""``--table-bits 4`` end to end on a small random BERT: convert (W4/8, token-wise, the int4 word table),
the bundle loads with its table packed, runs on text, and its golden vectors verify (a flipped
``emb.word`` value is caught at that node); the packed table's ``.bin`` holds two entries a byte."""

from __future__ import annotations

import shutil

import numpy as np

import intref
from intref.cli import main
from intref.convert.ptq.random_checkpoint import SENTENCES, write_checkpoint
from intref.quant import unpack_int4


def test_int4_word_table_converts_loads_runs_and_its_golden_set_verifies(tmp_path, capsys):
    ckpt = write_checkpoint(tmp_path / "c", "bert", seed=3)
    calib = tmp_path / "calib.txt"
    calib.write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
    bundle = tmp_path / "b.zip"
    assert main(["convert", "ptq", str(ckpt), "--calib", str(calib), "-o", str(bundle), "--weights", "w4/8",
                 "--group-size", "16", "--table-bits", "4"]) == 0
    out = capsys.readouterr().out
    assert "int4 word table" in out and "weights by gptq" in out and "smoothquant 0.5" in out    # the int4 defaults
    graph = intref.load(bundle)
    table = graph.tensors["emb.word.table"]
    assert (table.type.name, table.layout, graph.tensors["emb.word.row_scale"].type.name) == ("int4", "int4_packed", "int16")
    assert -8 <= int(table.data.min()) and int(table.data.max()) <= 7
    run = tmp_path / "run"
    assert main(["run", str(bundle), "--text", "a good movie", "--out", str(run)]) == 0
    golden = tmp_path / "golden"
    assert main(["golden", str(bundle), "--feed", f"input_ids={run / 'input_ids.npy'}", "--feed",
                 f"attention_mask={run / 'attention_mask.npy'}", "--out", str(golden), "--format", "npy,bin",
                 "--int4-packed", "--quiet"]) == 0
    assert np.array_equal(np.load(golden / "tensors" / "pooled.npy"), np.load(run / "pooled.npy"))
    packed = np.fromfile(golden / "tensors" / "emb.word.table.bin", np.uint8)
    assert packed.size == table.data.size // 2
    assert np.array_equal(unpack_int4(packed), table.data.reshape(-1))       # low nibble first
    w = graph.tensors["layer0.ffn.linear1.weight"].data.astype(np.uint8) & 0xF    # int4, two's complement nibbles
    documented = (w[:, 0::2] | (w[:, 1::2] << 4)).reshape(-1)                # docs/format.md 5.3, by hand
    assert np.array_equal(np.fromfile(golden / "tensors" / "layer0.ffn.linear1.weight.bin", np.uint8), documented)
    hw = tmp_path / "hw"
    shutil.copytree(golden / "tensors", hw / "tensors")
    assert main(["verify", str(golden), str(hw), "--quiet"]) == 0
    word = np.load(hw / "tensors" / "emb.word.npy")
    word.flat[3] = word.flat[3] + 1 if word.flat[3] < 127 else word.flat[3] - 1
    np.save(hw / "tensors" / "emb.word.npy", word)
    (hw / "tensors" / "emb.word.bin").unlink()
    capsys.readouterr()
    assert main(["verify", str(golden), str(hw), "--quiet"]) == 1
    assert "first divergent node: emb.word (TokenRequantize)" in capsys.readouterr().out
