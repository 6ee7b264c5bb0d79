"""golden/ is what its documented command writes, byte for byte, and every checked-in case replays
through ``intref.run`` to the sha256 of every tensor in its manifest: a kernel change that flips
one bit of one tensor fails here, naming the tensor and its first differing element."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import intref
from intref._checks import first_index
from intref.bundle import graph_sha256, load
from intref.golden import canonical_bytes
from intref.inttypes import IntType
from intref.cli import main as intref_main
from intref.golden.vectors import Layout, decode_bin, decode_text

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
BUNDLE, SETS = GOLDEN / "demo-ibert.zip", GOLDEN / "demo-ibert"
CASES = ("ordinary", "padded", "extremes")


def files_under(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def manifest_of(name: str) -> dict:
    return json.loads((SETS / name / "manifest.json").read_text())


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """The documented command, run into a temporary directory laid out like golden/."""
    root = tmp_path_factory.mktemp("golden")
    assert intref_main(["demo", "--out", str(root / "demo-ibert.zip"), "--golden", str(root / "demo-ibert")]) == 0
    return root


def test_the_sets_are_the_documented_ones():
    assert sorted(p.name for p in SETS.iterdir()) == sorted(("README.md", "weights") + CASES)
    assert manifest_of("weights")["constants"] == "only"
    for case in CASES:
        manifest = manifest_of(case)
        assert (manifest["constants"], manifest["bundle"]) == ("exclude", "../../demo-ibert.zip")
        assert manifest["metadata"]["case"] == case


def test_regenerated_bundle_is_byte_identical(regenerated):
    assert (regenerated / "demo-ibert.zip").read_bytes() == BUNDLE.read_bytes()


def test_regenerated_golden_sets_are_byte_identical(regenerated):
    expected, got = files_under(SETS), files_under(regenerated / "demo-ibert")
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    assert not missing and not extra, f"regeneration lacks {missing[:5]} and adds {extra[:5]}"
    different = [name for name in expected if expected[name].read_bytes() != got[name].read_bytes()]
    assert not different, f"{len(different)} regenerated file(s) differ, first: {different[:5]}"


def first_difference(expected: np.ndarray, got: np.ndarray) -> str:
    if expected.shape != got.shape:
        return f"shape {list(got.shape)}, expected {list(expected.shape)}"
    index = first_index(expected != got)
    return f"first at {list(index)}: {int(got[index])}, expected {int(expected[index])}"


@pytest.mark.parametrize("case", CASES)
def test_replaying_a_case_reproduces_every_tensor_sha256(case):
    manifest = manifest_of(case)
    graph = load(SETS / case / manifest["bundle"])
    assert graph_sha256(graph) == manifest["graph"]["sha256"]
    feeds = {}
    for name, entry in manifest["feeds"].items():
        path = SETS / case / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path
        feeds[name] = np.load(path, allow_pickle=False)
    values = {name: t.data for name, t in graph.tensors.items()}
    values.update(intref.run(graph, feeds, overflow=manifest["overflow"], trace=True))
    assert set(manifest["tensors"]) <= set(values)
    changed = []
    for name, entry in manifest["tensors"].items():   # in execution order: the first is the origin
        t = IntType.parse(entry["type"])
        if hashlib.sha256(canonical_bytes(values[name], t)).hexdigest() != entry["sha256"]:
            where = entry["files"].get("npy") or f"../weights/{manifest_of('weights')['tensors'][name]['files']['npy']}"
            changed.append(f"{name} ({first_difference(np.load(SETS / case / where), values[name])})")
    assert not changed, f"{case}: {len(changed)} tensor(s) no longer match golden/: {'; '.join(changed[:5])}"


def test_every_file_holds_the_tensor_its_manifest_names():
    """Every file of every set (npy, and bin / hex where the set has them) decodes to the sha256 of
    its tensor in the manifest."""
    decoders = {"npy": lambda path, t, shape, layout: np.load(path, allow_pickle=False),
                "bin": lambda path, t, shape, layout: decode_bin(path.read_bytes(), t, shape, layout),
                "hex": lambda path, t, shape, layout: decode_text(path.read_text(), t, shape, layout)}
    for name in ("weights",) + CASES:
        manifest = manifest_of(name)
        for tensor, entry in manifest["tensors"].items():
            t, shape, layout = IntType.parse(entry["type"]), tuple(entry["shape"]), Layout.from_json(entry["layout"])
            for fmt, path in entry["files"].items():
                array = decoders[fmt](SETS / name / path, t, shape, layout)
                assert hashlib.sha256(canonical_bytes(array, t)).hexdigest() == entry["sha256"], (name, tensor, fmt)


def test_cases_share_the_constants_of_the_weights_set():
    weights = manifest_of("weights")["tensors"]
    for case in CASES:
        constants = {n: e for n, e in manifest_of(case)["tensors"].items() if e["role"] == "constant"}
        assert sorted(constants) == sorted(weights)
        for name, entry in constants.items():
            assert entry["files"] == {} and entry["sha256"] == weights[name]["sha256"], (case, name)


def test_extremes_case_saturates_requantize_nodes_and_reaches_softmax_255():
    """Counted from the checked-in files themselves, not from the metadata that reports them."""
    manifest = manifest_of("extremes")
    graph = load(SETS / "extremes" / manifest["bundle"])
    ops = {node["outputs"][0]: node["op"] for node in manifest["nodes"]}
    saturated, softmax_255 = [], 0
    for name, op in ops.items():
        values = np.load(SETS / "extremes" / manifest["tensors"][name]["files"]["npy"])
        if op == "Requantize" and ((values == -128).any() or (values == 127).any()):
            saturated.append(name)
        if op == "ISoftmax":
            softmax_255 += int((values == 255).sum())
    assert len(saturated) >= 3, saturated
    assert softmax_255 > 0
    reached = manifest["metadata"]["extremes"]["nodes_at_ends"]
    assert set(saturated) <= set(reached)
    assert manifest["feeds"]["input_ids"] and graph.symbols["seq"] == 32
    assert max(row["length"] for row in manifest["metadata"]["rows"]) == 32    # a full-length row


def test_regeneration_refuses_a_non_empty_target_unless_it_is_a_golden_set(tmp_path, capsys):
    target = tmp_path / "demo-ibert"
    (target / "weights").mkdir(parents=True)
    args = ["demo", "--out", str(tmp_path / "demo-ibert.zip"), "--golden", str(target)]
    assert intref_main(args) == 2
    assert "pass --replace" in capsys.readouterr().err
    (target / "notes.txt").write_text("mine")
    assert intref_main(args + ["--replace"]) == 2
    assert "'notes.txt', which is no part of a demo golden set" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt", "weights"]
    assert not (tmp_path / "demo-ibert.zip").exists()
