"""Text into a bundle (intref/convert/ptq/text.py, intref/bundle/metadata.py, ``intref run --text``):
the tokenizer travels in graph.json, is validated on load, and tokenizes real text for the run;
every bad input is an intref error naming file, field or sentence."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import intref
from intref.cli import main
from intref.convert.ptq.text import read_text_file, text_feeds, text_inputs, tokenizer_metadata
from intref.convert.ptq.tokenizer import WordPieceTokenizer
from intref.errors import FeedError, SchemaError, TextError

TINY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "world", "!", "un", "##aff", "##able"]
TABLE = np.arange(len(TINY) * 3, dtype=np.int8).reshape(len(TINY), 3)


def tiny_graph(*, with_tokenizer=True, batch=2, seq=6):
    b = intref.GraphBuilder("text-tiny", symbols={"batch": batch, "seq": seq})
    ids = b.input("input_ids", "int16", ["batch", "seq"], range=(0, len(TINY) - 1))
    table = b.tensor("table", TABLE, scale=0.5)
    b.output(b.add("Embedding", [ids, table], "int8", name="emb", scale=0.5))
    meta = tokenizer_metadata(WordPieceTokenizer(TINY)) if with_tokenizer else {}
    return b.build(metadata=meta)


def test_run_text_through_a_saved_bundle(tmp_path, capsys):
    intref.save(tiny_graph(), tmp_path / "b.zip")
    texts = tmp_path / "t.txt"
    texts.write_text("unaffable\n\n  world !\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "b.zip"), "--text", "Hello, world!", "--text", "hello",
                 "--text-file", str(texts), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    ids, mask, emb = (np.load(out / f"{n}.npy") for n in ("input_ids", "attention_mask", "emb"))
    np.testing.assert_array_equal(ids, [[2, 5, 6, 7, 8, 3], [2, 5, 3, 0, 0, 0], [2, 9, 10, 11, 3, 0],
                                        [2, 7, 8, 3, 0, 0]])       # 4 texts in batches of 2, one width
    np.testing.assert_array_equal(mask[1], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(emb, TABLE[ids])


@pytest.mark.parametrize("args, words", [
    (["--text", "hello , world ! !"], "text 0: 7 tokens .* exceed the maximum length 6"),
    (["--text", "hello", "--feed", "input_ids=x.npy"], "take the place of --feed"),
])
def test_text_errors_exit_2_naming_the_sentence(tmp_path, capsys, args, words):
    intref.save(tiny_graph(), tmp_path / "b")
    assert main(["run", str(tmp_path / "b"), *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intref run: error:") and __import__("re").search(words, err), err


def test_a_bundle_without_tokenizer_refuses_text(tmp_path, capsys):
    intref.save(tiny_graph(with_tokenizer=False), tmp_path / "b")
    assert main(["run", str(tmp_path / "b"), "--text", "hello", "--out", str(tmp_path / "o")]) == 2
    assert "carries no tokenizer" in capsys.readouterr().err


def test_text_files_that_cannot_be_used(tmp_path):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(TextError, match="not UTF-8") as info:
        read_text_file(bad)
    assert info.value.path == str(bad) and info.value.field == "line 2"
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(TextError, match="no text"):
        read_text_file(tmp_path / "blank.txt")
    with pytest.raises(TextError, match="cannot read"):
        read_text_file(tmp_path / "absent.txt")


def test_text_feeds_give_the_inputs_the_graph_declares():
    tok = WordPieceTokenizer(TINY)
    inputs = [SimpleNamespace(name=n) for n in ("input_ids", "attention_mask", "token_type_ids")]
    graph = SimpleNamespace(symbols={"batch": 3, "seq": 8}, inputs=inputs, metadata=tokenizer_metadata(tok))
    feeds = text_feeds(graph, text_inputs(graph, ["hello"] * 4))
    assert [f["input_ids"].shape for f in feeds] == [(3, 3), (1, 3)]
    assert not feeds[0]["token_type_ids"].any() and feeds[0]["attention_mask"].all()
    graph.inputs = inputs + [SimpleNamespace(name="pixels")]
    with pytest.raises(FeedError, match="inputs \\['pixels'\\] that text does not give"):
        text_feeds(graph, text_inputs(graph, ["hello"]))


def _corrupt(tmp_path, change):
    intref.save(tiny_graph(), tmp_path / "b")
    doc = json.loads((tmp_path / "b" / "graph.json").read_text())
    change(doc["metadata"]["tokenizer"])
    (tmp_path / "b" / "graph.json").write_text(json.dumps(doc))
    return tmp_path / "b"


@pytest.mark.parametrize("change, field", [
    (lambda t: t.update(kind="bpe"), "metadata.tokenizer.kind"),
    (lambda t: t.update(lower_case=1), "metadata.tokenizer.lower_case"),
    (lambda t: t["vocab"].__setitem__(3, 7), "metadata.tokenizer.vocab[3]"),
    (lambda t: t.update(vocab=[]), "metadata.tokenizer.vocab"),
    (lambda t: t["specials"].update(unk="[NOPE]"), "metadata.tokenizer.specials.unk"),
    (lambda t: t["specials"].pop("cls"), "metadata.tokenizer.specials.cls"),
    (lambda t: t["specials"].update(bos="[CLS]"), "metadata.tokenizer.specials.bos"),
    (lambda t: t.update(extra=1), "metadata.tokenizer"),
])
def test_a_bad_tokenizer_entry_is_refused_on_load(tmp_path, change, field):
    with pytest.raises(SchemaError) as info:
        intref.load(_corrupt(tmp_path, change))
    assert info.value.path == "graph.json" and info.value.field == field
