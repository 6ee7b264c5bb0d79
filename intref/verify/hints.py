"""Why a hardware tensor differs: each hint is a hypothesis tested exactly, never a guess.

In order, the first that holds is reported:

1. rounding dialect (Requantize / ResidualAdd): re-running the node on the same inputs with
   another of ``intref.spec.rounding.ROUNDING_MODES`` reproduces the dump exactly;
2. overflow: re-running the node with ``overflow`` flipped (saturate <-> wrap; for other ops, the
   run's overflow policy flipped) reproduces the dump exactly;
   shift off by one (Requantize / ResidualAdd): re-running with every shift (of one branch) one
   larger or one smaller reproduces the dump exactly;
3. byte order (.bin / .npy): the golden with the bytes of every word swapped equals the dump;
4. transposed layout: the file read in the shape with its last two axes swapped, then
   transposed, equals the golden;
5. constant offset: ``got - expected`` is one non-zero constant on every element;
6. narrow datapath: the dump equals the golden wrapped to fewer bits than the type has;
7. single-bit errors: every differing element differs in exactly one bit;
8. otherwise "no simple pattern", with the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import IntrefError, format_index
from ..graph import Graph, Step
from ..interpreter import fit
from ..inttypes import MAX_SHIFT, IntType
from ..ops import REGISTRY
from ..ops.base import Context
from ..spec.rounding import ROUNDING_MODES
from .compare import bit_positions, describe_bits, differences_at, differing_positions, percent
from .inputs import Dump

REQUANT_OPS = ("Requantize", "ResidualAdd")
HALF_DIALECTS = ("half_even", "half_up", "half_away")   # they differ from each other only at exact ties
MAX_TIE_CHECKS = 1 << 16           # exact-tie checks run per element, in Python ints


def rerun_node(graph: Graph, step: Step, inputs: Sequence[np.ndarray], overflow: str,
               overrides: Optional[dict] = None) -> Tuple[np.ndarray, ...]:
    """Run one node on ``inputs`` (optionally with some attributes replaced) and fit each output
    to its declared type under ``overflow``, exactly as the interpreter does."""
    prepared = step.prepared
    if overrides:
        prepared = REGISTRY[step.node.op].prepare(Context(step.node.name, graph.symbols), {**step.attrs, **overrides},
                                                  tuple(graph.values[name] for name in step.node.inputs),
                                                  tuple(info.type for info in step.node.outputs))
    results = prepared.run(*inputs)
    return tuple(fit(np.asarray(array), info.type, overflow, where=f"node {step.node.name!r} output {info.name!r}")
                 for info, array in zip(step.node.outputs, results))


@dataclass(frozen=True)
class HintCase:
    """A differing tensor: ``expected`` was computed from ``inputs`` by output ``output`` of
    ``step`` (``step`` is None for a graph input or constant) under the run's ``overflow``."""

    graph: Graph
    step: Optional[Step]
    output: int
    inputs: Optional[Tuple[np.ndarray, ...]]
    expected: np.ndarray
    got: np.ndarray
    type: IntType
    dump: Dump
    overflow: str

    @property
    def node(self) -> str:
        return self.step.node.name if self.step is not None else ""


def hint(case: HintCase) -> str:
    """The first hypothesis that holds exactly, or the statistics."""
    for test in (_rounding_or_overflow_attribute, _shift_off_by_one, _overflow_policy, _byte_swap, _transposed, _constant_offset,
                 _narrow_wrap, _single_bit_errors):
        text = test(case)
        if text:
            return text
    return _statistics(case)


def _reproduces(case: HintCase, overrides: Optional[dict] = None, overflow: Optional[str] = None) -> bool:
    try:
        out = rerun_node(case.graph, case.step, case.inputs, overflow or case.overflow, overrides)[case.output]
    except IntrefError:   # the alternative cannot run on these inputs: the hypothesis does not hold
        return False
    return out.shape == case.got.shape and bool(np.array_equal(out, case.got))


def _rounding_or_overflow_attribute(case: HintCase) -> Optional[str]:
    if case.step is None or case.inputs is None or case.step.node.op not in REQUANT_OPS:
        return None
    said = case.step.attrs["rounding"]
    matching = [mode for mode in ROUNDING_MODES if mode != said and _reproduces(case, {"rounding": mode})]
    if matching:
        return _rounding_text(case, said, matching)
    policy = case.step.attrs["overflow"]
    other = "wrap" if policy == "saturate" else "saturate"
    if _reproduces(case, {"overflow": other}):
        done = "wrapped (two's complement)" if other == "wrap" else "saturated"
        return (f"values {done} where the graph says overflow={policy}: re-running node {case.node!r} with "
                f"overflow={other} reproduces the dump exactly")
    return None


def _shift_off_by_one(case: HintCase) -> Optional[str]:
    if case.step is None or case.inputs is None or case.step.node.op not in REQUANT_OPS:
        return None
    for key in ("shift",) if case.step.node.op == "Requantize" else ("shift_a", "shift_b"):
        said = case.step.attrs[key]
        for delta in (1, -1):
            moved = tuple(s + delta for s in said) if isinstance(said, tuple) else said + delta
            if all(0 <= s <= MAX_SHIFT for s in (moved if isinstance(moved, tuple) else (moved,))) \
                    and _reproduces(case, {key: moved}):
                return (f"shift off by {delta:+d}: re-running node {case.node!r} with every {key} {delta:+d} "
                        f"({key}={list(moved) if isinstance(moved, tuple) else moved}) reproduces the dump exactly "
                        f"(the hardware divides by 2**({key}{delta:+d}))")
    return None


def _rounding_text(case: HintCase, said: str, matching) -> str:
    positions = differing_positions(case.expected, case.got)
    unit = bool(np.all(np.abs(differences_at(case.expected, case.got, positions, case.type)) == 1))
    ties = unit and said in HALF_DIALECTS and all(m in HALF_DIALECTS for m in matching) \
        and _all_exact_ties(case, positions)
    dialect = matching[0] if len(matching) == 1 else " or ".join(matching) + " (they agree on these inputs)"
    text = (f"ties rounded {dialect} where the graph says {said}" if ties
            else f"rounding {dialect} where the graph says {said}")
    text += f": re-running node {case.node!r} with rounding={matching[0]} reproduces the dump exactly"
    if ties:
        return text + f"; every difference is ±1 at an exact tie (x*m/2**s = k + 1/2), {positions.size} element(s)"
    return text + (f"; every difference is ±1 ({positions.size} element(s))" if unit else "")


def _all_exact_ties(case: HintCase, positions: np.ndarray) -> bool:
    """Whether every flat position is an exact tie of a requantized branch: ``x*m mod 2**s == 2**(s-1)``."""
    if positions.size > MAX_TIE_CHECKS:
        return False
    attrs, shape = case.step.attrs, case.expected.shape
    if case.step.node.op == "Requantize":
        branches = [(case.inputs[0], attrs["multiplier"], attrs["shift"])]
    else:
        branches = [(np.broadcast_to(x, shape), attrs[f"multiplier_{side}"], attrs[f"shift_{side}"])
                    for x, side in zip(case.inputs, "ab")]
    for flat in positions:
        index = np.unravel_index(int(flat), shape)
        if not any(_is_tie(int(x[index]), m, s, index[-1] if index else 0) for x, m, s in branches):
            return False
    return True


def _is_tie(x: int, multiplier, shift, channel: int) -> bool:
    m = int(multiplier[channel] if isinstance(multiplier, tuple) else multiplier)
    s = int(shift[channel] if isinstance(shift, tuple) else shift)
    return s >= 1 and (x * m) % (1 << s) == 1 << (s - 1)


def _overflow_policy(case: HintCase) -> Optional[str]:
    if case.step is None or case.inputs is None or case.step.node.op in REQUANT_OPS:
        return None
    for policy in ("wrap", "saturate"):
        if policy != case.overflow and _reproduces(case, overflow=policy):
            done = "wrapped (two's complement)" if policy == "wrap" else "saturated"
            return (f"values {done} where the run's overflow policy is {case.overflow}: re-running node "
                    f"{case.node!r} with overflow={policy} reproduces the dump exactly")
    return None


def _byte_swap(case: HintCase) -> Optional[str]:
    size = case.type.storage.itemsize
    if case.dump.fmt not in ("bin", "npy") or size == 1:
        return None
    if np.array_equal(case.expected.astype(case.type.storage).byteswap(), case.got):
        return (f"byte order: the dump equals the golden with the bytes of every {size}-byte word swapped "
                f"(written big-endian where little-endian is expected)")
    return None


def _transposed(case: HintCase) -> Optional[str]:
    shape = case.expected.shape
    if len(shape) < 2 or shape[-1] == 1 or shape[-2] == 1:
        return None
    swapped = shape[:-2] + (shape[-1], shape[-2])
    other = case.dump.reread(swapped)
    if other is not None and np.array_equal(np.swapaxes(other, -1, -2), case.expected):
        return (f"transposed layout: read as {list(swapped)} and transposed back, the dump equals the golden "
                f"(the last two axes were written swapped)")
    return None


def _constant_offset(case: HintCase) -> Optional[str]:
    positions = differing_positions(case.expected, case.got)
    if positions.size < 2 or positions.size != case.expected.size:
        return None
    diffs = differences_at(case.expected, case.got, positions, case.type)
    if bool(np.all(diffs == diffs[0])):
        return f"constant offset: got - expected = {int(diffs[0]):+d} on every element (a zero point added or missed?)"
    return None


def _narrow_wrap(case: HintCase) -> Optional[str]:
    t = case.type
    if t.bits > 62 or t.bits < 2:
        return None
    positions = differing_positions(case.expected, case.got)
    e_all, g_all = case.expected.astype(np.int64).ravel(), case.got.astype(np.int64).ravel()
    e, g = e_all[positions], g_all[positions]
    for k in range(t.bits - 1, 0, -1):
        if np.array_equal(_wrap(e, k, t.signed), g) and np.array_equal(_wrap(e_all, k, t.signed), g_all):
            kind = f"{'' if t.signed else 'u'}int{k}"
            return (f"narrow datapath: the dump equals the golden wrapped to {kind} (only the low {k} bits kept) "
                    f"where the type is {t}: every difference is a multiple of 2**{k}")
    return None


def _wrap(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    low = values & np.int64((1 << bits) - 1)
    return np.where(low >= (1 << (bits - 1)), low - np.int64(1 << bits), low) if signed else low


def _xor_codes(case: HintCase, positions: np.ndarray) -> list:
    """The xor of expected and got two's complement codes (at the type's width) at ``positions``."""
    mask = (1 << case.type.bits) - 1
    e, g = case.expected.ravel()[positions], case.got.ravel()[positions]
    if case.type.bits <= 62:
        return [int(x) for x in (e.astype(np.int64) ^ g.astype(np.int64)) & np.int64(mask)]
    return [(int(a) ^ int(b)) & mask for a, b in zip(e, g)]


def _single_bit_errors(case: HintCase) -> Optional[str]:
    positions = differing_positions(case.expected, case.got)
    xors = _xor_codes(case, positions)
    if not xors or any(x & (x - 1) for x in xors):
        return None
    bits = sorted({x.bit_length() - 1 for x in xors})
    if len(xors) == 1:
        index = np.unravel_index(int(positions[0]), case.expected.shape)
        return (f"one flipped bit: element {format_index(index)} differs only in {describe_bits(bits)}; "
                f"every other element matches")
    return (f"single-bit errors: each of the {len(xors)} differing elements differs in exactly one bit "
            f"({describe_bits(bits)})")


def _statistics(case: HintCase) -> str:
    positions = differing_positions(case.expected, case.got)
    diffs = differences_at(case.expected, case.got, positions, case.type)
    if positions.size == 1:
        index = np.unravel_index(int(positions[0]), case.expected.shape)
        return f"no simple pattern: only element {format_index(index)} differs, by {int(diffs[0]):+d}"
    units = int(np.count_nonzero(np.abs(diffs) == 1))
    xor = 0
    for x in _xor_codes(case, positions):
        xor |= x
    return (f"no simple pattern: {positions.size} of {case.expected.size} elements differ "
            f"({percent(positions.size, case.expected.size)}); got - expected from {int(min(diffs)):+d} to "
            f"{int(max(diffs)):+d}, {units} of them ±1; bits that differ somewhere: "
            f"{describe_bits(bit_positions(xor))}")
