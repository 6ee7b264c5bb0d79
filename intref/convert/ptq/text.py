"""Real text in and out of a bundle: the tokenizer a bundle carries, text files, text feeds.

A bundle converted from a float checkpoint carries its WordPiece tokenizer in graph.json, as
``metadata.tokenizer`` (validated by the bundle schema):

    {"kind": "wordpiece", "lower_case": true,
     "specials": {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]"},
     "vocab": ["[PAD]", "[unused0]", ...]}               # the token of id i at index i

A converter attaches it with one call, ``builder.build(metadata={..., **tokenizer_metadata(tok)})``;
``bundle_tokenizer(graph)`` gives it back and ``run_texts(graph, texts)`` tokenizes and runs real
text (what ``intref run BUNDLE --text/--text-file`` does).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from intref.errors import FeedError, TextError
from .tokenizer import WordPieceTokenizer, read_utf8

TOKENIZER_KEY = "tokenizer"
SEQ_SYMBOL, BATCH_SYMBOL = "seq", "batch"


def tokenizer_metadata(tokenizer: WordPieceTokenizer) -> Dict[str, dict]:
    """The graph metadata entry that makes a bundle carry ``tokenizer``."""
    return {TOKENIZER_KEY: tokenizer.to_json()}


def bundle_tokenizer(graph) -> WordPieceTokenizer:
    """The tokenizer a graph carries; ``FeedError`` when it carries none."""
    entry = graph.metadata.get(TOKENIZER_KEY)
    if entry is None:
        raise FeedError("this bundle carries no tokenizer (metadata.tokenizer), so it cannot take text: "
                        "feed input_ids with --feed, or convert with `intref convert ptq`")
    return WordPieceTokenizer.from_json(entry, source="graph.json: metadata.tokenizer")


def read_text_file(path) -> List[str]:
    """The non-blank lines of a UTF-8 text file, stripped. ``TextError`` naming the file (and the line)
    when it cannot be read, is not UTF-8 or holds no text."""
    text = read_utf8(path, TextError)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise TextError("no text: the file is empty or blank", path=str(path))
    return lines


def text_inputs(graph, texts: Sequence[str]) -> Dict[str, np.ndarray]:
    """``input_ids``, ``attention_mask`` and ``token_type_ids`` (zeros), int64 [len(texts), S]: the
    texts tokenized by the graph's tokenizer, padded to the longest, which must fit the graph's
    ``seq`` symbol (else ``TextError`` naming the text)."""
    max_seq = graph.symbols.get(SEQ_SYMBOL)
    if max_seq is None:
        raise FeedError(f"the graph declares no {SEQ_SYMBOL!r} symbol, so text cannot be fed")
    ids, mask = bundle_tokenizer(graph).batch(texts, max_len=max_seq)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def text_feeds(graph, inputs: Dict[str, np.ndarray]) -> List[Dict[str, np.ndarray]]:
    """The arrays of ``text_inputs`` that the graph declares as inputs, in batches of at most its
    ``batch`` symbol (every batch as wide as the longest text of all, so outputs concatenate)."""
    names = [info.name for info in graph.inputs]
    unknown = sorted(set(names) - set(inputs))
    if unknown:
        raise FeedError(f"the graph has inputs {unknown} that text does not give (it gives {sorted(inputs)})")
    step = graph.symbols.get(BATCH_SYMBOL, len(inputs["input_ids"]))
    return [{name: inputs[name][start:start + step] for name in names} for start in range(0, len(inputs["input_ids"]), step)]


def run_texts(graph, texts: Sequence[str], *, overflow: str = "check") -> Dict[str, np.ndarray]:
    """Run ``texts`` batch by batch; every graph output concatenated along the batch axis, plus the
    ``input_ids`` and ``attention_mask`` the tokenizer gave."""
    from intref import run
    inputs = text_inputs(graph, texts)
    results = [run(graph, feed, overflow=overflow) for feed in text_feeds(graph, inputs)]
    outputs = {name: np.concatenate([r[name] for r in results]) for name in results[0]}
    return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], **outputs}
