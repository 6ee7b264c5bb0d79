"""BERT's WordPiece tokenizer in pure Python, from ``vocab.txt`` alone.

    tok = WordPieceTokenizer.from_vocab_file("vocab.txt")          # uncased, [CLS]/[SEP]/[PAD]/[UNK]
    tok.encode("Hello, world!")          # [101, 7592, 1010, 2088, 999, 102]
    ids, mask = tok.batch(texts, max_len=128)     # int64 [B, S], right-padded to the longest

It gives the ids of Hugging Face's ``BertTokenizer`` / the ``tokenizers`` package's BERT pipeline
(a test compares them on every evaluation sentence). The steps, as ``tokenizers`` runs them:

1. Special tokens written in the text (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``,
   case-sensitive, exactly as in the vocabulary) are kept whole; the text between them goes on.
2. Normalize: drop NUL, U+FFFD and every character of Unicode category C* except tab, LF, CR;
   turn every other whitespace character into a space; put spaces around CJK ideographs; when
   lower-casing, decompose (NFD), drop non-spacing marks (Mn) and lower-case.
3. Split on spaces, and make every punctuation character (ASCII punctuation or category P*) a
   word of its own.
4. WordPiece: greedy longest match from the left, continuation pieces prefixed ``##``; a word of
   more than 100 characters, or one with an unmatched remainder, becomes ``[UNK]`` as a whole.

A vocabulary line is a token (the line without its line break); a token that appears twice keeps
its last id, as in both Hugging Face implementations.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from intref.errors import TextError, VocabularyError

MAX_WORD_CHARS = 100
SPECIAL_ROLES = ("cls", "sep", "pad", "unk", "mask")
BERT_SPECIALS = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]", "mask": "[MASK]"}
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


@lru_cache(maxsize=None)
def char_class(char: str) -> str:
    """``"drop"`` (NUL, U+FFFD, category C* but tab/LF/CR), ``"space"``, ``"cjk"``, ``"punct"`` or
    ``"plain"``: the role of one character in normalization and splitting."""
    code = ord(char)
    if code == 0 or code == 0xFFFD or (char not in "\t\n\r" and unicodedata.category(char)[0] == "C"):
        return "drop"
    if char.isspace():
        return "space"
    if any(lo <= code <= hi for lo, hi in CJK_RANGES):
        return "cjk"
    if (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
            or unicodedata.category(char)[0] == "P"):
        return "punct"
    return "plain"


def normalize(text: str, lower_case: bool) -> str:
    """Step 2 of the module doc: clean, space out CJK and (when lower-casing) strip accents, lower."""
    parts = []
    for char in text:
        kind = char_class(char)
        parts.append("" if kind == "drop" else " " if kind == "space" else f" {char} " if kind == "cjk" else char)
    text = "".join(parts)
    if lower_case:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").lower()
    return text


def split_words(text: str) -> List[str]:
    """Step 3: split a normalized text on whitespace and isolate each punctuation character."""
    words: List[str] = []
    for chunk in text.split():
        start = 0
        for i, char in enumerate(chunk):
            if char_class(char) == "punct":
                words.extend(w for w in (chunk[start:i], char) if w)
                start = i + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


def wordpiece(word: str, index: Dict[str, int], unk_id: int) -> List[int]:
    """Step 4: the ids of one word's pieces, or ``[unk_id]`` when it does not decompose."""
    if len(word) > MAX_WORD_CHARS:
        return [unk_id]
    ids, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in index:
                ids.append(index[piece])
                break
            end -= 1
        if end == start:
            return [unk_id]
        start = end
    return ids


def read_utf8(path, error: type) -> str:
    """The text of a UTF-8 file; ``error`` (a ``FileFieldError`` class) naming the file, and the line
    of the first bad byte, when it cannot be read or decoded."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise error(f"not UTF-8 (byte {exc.start})", path=str(path), field=f"line {line}") from None


class WordPieceTokenizer:
    """A BERT WordPiece tokenizer over a vocabulary list (see the module doc). ``specials`` maps the
    roles cls/sep/pad/unk/mask to their tokens; cls, sep, pad and unk must be in the vocabulary."""

    def __init__(self, vocab: Sequence[str], *, lower_case: bool = True,
                 specials: Optional[Dict[str, str]] = None, source: str = "vocabulary"):
        self.vocab = list(vocab)
        self.lower_case = bool(lower_case)
        self.specials = dict(BERT_SPECIALS if specials is None else specials)
        self.index = {token: i for i, token in enumerate(self.vocab)}
        unknown = sorted(set(self.specials) - set(SPECIAL_ROLES))
        if unknown:
            raise VocabularyError(f"unknown special-token roles {unknown}; known: {list(SPECIAL_ROLES)}",
                                  path=source, field="specials")
        for role in ("cls", "sep", "pad", "unk"):
            if self.specials.get(role) not in self.index:
                raise VocabularyError(f"the {role} token {self.specials.get(role)!r} is not in the vocabulary "
                                      f"of {len(self.vocab)} tokens", path=source, field=role)
        present = sorted((t for t in self.specials.values() if t in self.index), key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(re.escape(t) for t in present) + ")")
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = (
            self.index[self.specials[role]] for role in ("cls", "sep", "pad", "unk"))

    @classmethod
    def from_vocab_file(cls, path, lower_case: bool = True, specials: Optional[Dict[str, str]] = None):
        """Read ``vocab.txt`` (UTF-8, one token a line); errors name the file and line."""
        path = Path(path)
        vocab = read_utf8(path, VocabularyError).split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()
        vocab = [token[:-1] if token.endswith("\r") else token for token in vocab]
        if not vocab:
            raise VocabularyError("the vocabulary is empty", path=str(path))
        return cls(vocab, lower_case=lower_case, specials=specials, source=str(path))

    @classmethod
    def from_checkpoint_dir(cls, directory):
        """``vocab.txt`` with the casing and special tokens of ``tokenizer_config.json`` (when present)."""
        directory = Path(directory)
        config_file = directory / "tokenizer_config.json"
        config = {}
        if config_file.is_file():
            try:
                config = json.loads(config_file.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                raise VocabularyError(f"not UTF-8 JSON: {error}", path=str(config_file)) from None
        specials = {}
        for role, default in BERT_SPECIALS.items():
            token = config.get(f"{role}_token", default)
            token = token.get("content") if isinstance(token, dict) else token
            if not isinstance(token, str):
                raise VocabularyError(f"expected a string, got {token!r}", path=str(config_file), field=f"{role}_token")
            specials[role] = token
        return cls.from_vocab_file(directory / "vocab.txt", lower_case=bool(config.get("do_lower_case", True)),
                                   specials=specials)

    def to_json(self) -> dict:
        """What a bundle stores to rebuild this tokenizer: ``from_json(to_json())`` tokenizes alike."""
        return {"kind": "wordpiece", "lower_case": self.lower_case, "specials": dict(self.specials),
                "vocab": list(self.vocab)}

    @classmethod
    def from_json(cls, data: dict, source: str = "tokenizer"):
        return cls(data["vocab"], lower_case=data["lower_case"], specials=data["specials"], source=source)

    def tokenize_ids(self, text: str) -> List[int]:
        """The ids of ``text`` without [CLS]/[SEP] (steps 1-4)."""
        ids: List[int] = []
        for i, part in enumerate(self._special_split.split(text)):
            if i % 2:
                ids.append(self.index[part])
                continue
            for word in split_words(normalize(part, self.lower_case)):
                ids.extend(wordpiece(word, self.index, self.unk_id))
        return ids

    def encode(self, text: str) -> List[int]:
        """``[CLS] pieces of text [SEP]`` as ids."""
        return [self.cls_id, *self.tokenize_ids(text), self.sep_id]

    def batch(self, texts: Sequence[str], max_len: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)``, int64 [B, S]: each text encoded, right-padded with the pad
        id to the longest (S <= max_len). A text of more than ``max_len`` tokens raises ``TextError``
        naming its index: nothing is truncated silently."""
        if isinstance(texts, str):
            raise TypeError("batch() takes a sequence of texts, not one string")
        if not texts:
            raise TextError("no text to tokenize", field="texts")
        encoded = [self.encode(text) for text in texts]
        for i, ids in enumerate(encoded):
            if len(ids) > max_len:
                raise TextError(f"{len(ids)} tokens (with [CLS]/[SEP]) exceed the maximum length {max_len}: "
                                f"{texts[i][:60]!r}", field=f"text {i}", index=i)
        width = max(len(ids) for ids in encoded)
        input_ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for i, ids in enumerate(encoded):
            input_ids[i, :len(ids)] = ids
            mask[i, :len(ids)] = 1
        return input_ids, mask
