"""graph.json ``metadata`` entries that intref itself reads back, validated at load time.

``metadata.tokenizer`` (written by the post-training-quantization converter, read by
``intref run --text``): a WordPiece tokenizer, exactly these fields:

    kind        "wordpiece"
    lower_case  bool
    specials    object: role -> token, roles among cls, sep, pad, unk, mask; cls, sep, pad and unk
                required, and every token must be in ``vocab``
    vocab       list of 1..MAX_VOCAB strings (the token of id i at index i)

``metadata.weight_quant`` (written by the same converter, read by ``intref inspect``): how each
GEMM weight's integers and scales were chosen at build time, an object weight tensor name -> one of
``WEIGHT_QUANT_METHODS`` (``max`` max-abs, ``mse`` / ``act`` a searched clip, ``gptq``). Every key must
name a stored tensor.

Each defect raises ``SchemaError`` naming graph.json and the field (``metadata.tokenizer.vocab[7]``).
"""

from __future__ import annotations

from ..errors import SchemaError

FILE = "graph.json"
FIELD = "metadata.tokenizer"
MAX_VOCAB = 1 << 21
MAX_TOKEN_CHARS = 1024
REQUIRED_ROLES, OPTIONAL_ROLES = ("cls", "sep", "pad", "unk"), ("mask",)
TOKENIZER_FIELDS = ("kind", "lower_case", "specials", "vocab")
WEIGHT_QUANT_METHODS = ("max", "mse", "act", "gptq")     # intref.convert.ptq.weight_quant.WEIGHT_QUANTS


def _fail(field: str, message: str):
    raise SchemaError(message, path=FILE, field=field)


def check_tokenizer(entry) -> None:
    """Validate a ``metadata.tokenizer`` entry (see the module doc)."""
    if type(entry) is not dict:
        _fail(FIELD, f"expected an object, got {type(entry).__name__}")
    if sorted(entry) != sorted(TOKENIZER_FIELDS):
        _fail(FIELD, f"fields {sorted(entry)[:8]}, expected exactly {list(TOKENIZER_FIELDS)}")
    if entry["kind"] != "wordpiece":
        _fail(f"{FIELD}.kind", f"{str(entry['kind'])[:40]!r} is not a known tokenizer (known: 'wordpiece')")
    if type(entry["lower_case"]) is not bool:
        _fail(f"{FIELD}.lower_case", "expected a bool")
    vocab = entry["vocab"]
    if type(vocab) is not list or not 1 <= len(vocab) <= MAX_VOCAB:
        _fail(f"{FIELD}.vocab", f"expected a list of 1..{MAX_VOCAB} strings")
    bad = next((i for i, t in enumerate(vocab) if type(t) is not str or len(t) > MAX_TOKEN_CHARS), None)
    if bad is not None:
        _fail(f"{FIELD}.vocab[{bad}]", f"expected a string of at most {MAX_TOKEN_CHARS} characters")
    specials = entry["specials"]
    if type(specials) is not dict:
        _fail(f"{FIELD}.specials", "expected an object")
    known = set(vocab)
    for role in sorted(set(specials) | set(REQUIRED_ROLES)):
        where = f"{FIELD}.specials.{role[:40]}"
        if role not in REQUIRED_ROLES + OPTIONAL_ROLES:
            _fail(where, f"unknown role (known: {', '.join(REQUIRED_ROLES + OPTIONAL_ROLES)})")
        if role not in specials:
            _fail(where, "required field is missing")
        if type(specials[role]) is not str or specials[role] not in known:
            _fail(where, f"{str(specials[role])[:40]!r} is not a token of the vocabulary")


def check_weight_quant(entry, tensors) -> None:
    """Validate ``metadata.weight_quant`` (see the module doc); ``tensors``: the stored tensors' names."""
    field = "metadata.weight_quant"
    if type(entry) is not dict:
        _fail(field, f"expected an object (weight tensor -> method), got {type(entry).__name__}")
    for name, method in entry.items():
        where = f"{field}.{name[:200]}"
        if name not in tensors:
            _fail(where, "names no stored tensor")
        if type(method) is not str or method not in WEIGHT_QUANT_METHODS:
            _fail(where, f"{str(method)[:40]!r} is not a weight quantization method "
                         f"(known: {', '.join(WEIGHT_QUANT_METHODS)})")


def check_metadata(metadata: dict, tensors=frozenset()) -> None:
    """The entries of ``metadata`` that intref reads; any other entry is free-form. ``tensors``: the
    names of the stored tensors (``weight_quant`` keys must be among them)."""
    if "tokenizer" in metadata:
        check_tokenizer(metadata["tokenizer"])
    if "weight_quant" in metadata:
        check_weight_quant(metadata["weight_quant"], tensors)
