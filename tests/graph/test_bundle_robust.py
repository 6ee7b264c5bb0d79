"""Adversarial bundles that once crashed, hung or blew up (issue 8, "no crash, hang or blow-up"):
a topological sort that was quadratic, a zip member hashed only after being materialized, a
memory-mapped tensor file changed after load (SIGBUS or silently other values), names that
matched their pattern with a trailing newline."""

import json
import os
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import intref
from intref.errors import BundleError, GraphError, SchemaError, TensorFileError
from intref.graph import Graph

from .test_analysis import graph, transpose, value
from .test_bundle_errors import edit, small_graph

FEEDS = {"ids": np.array([[1, 2, 3]], dtype=np.int32)}


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "b"
    intref.save(small_graph(), path)
    return path


# --- load time is near linear in the graph size ------------------------------------------------------

def _chain(n):
    return [transpose("n0", "x")] + [transpose(f"n{i}", f"n{i - 1}") for i in range(1, n)]


def _seconds_to_build(nodes, last):
    start = time.perf_counter()
    built = graph(nodes, outputs=(last,))
    return time.perf_counter() - start, built


def test_a_long_chain_listed_in_reverse_loads_as_fast_as_in_order():
    # The sort used to scan the pending list for the first ready node: 16,000 reversed nodes took 109 s
    # (quadratic); 6,000 took ~15 s against ~1 s in file order. Now both orders cost the same.
    nodes = _chain(6000)
    forward, _ = _seconds_to_build(nodes, "n5999")
    backward, built = _seconds_to_build(nodes[::-1], "n5999")
    assert [n.name for n in built.nodes[:3]] == ["n0", "n1", "n2"]
    assert backward < 3 * forward + 1.0, (forward, backward)


def test_the_stable_order_is_kept_first_ready_node_in_file_order():
    # two independent branches interleaved in the file: the file order is legal and is kept exactly
    nodes = [transpose("a1", "x"), transpose("b1", "x"), transpose("a2", "a1"), transpose("b2", "b1")]
    g = Graph(name="g", inputs=[value("x", "int8", ["seq", 4])], outputs=["a2", "b2"], nodes=nodes,
              symbols={"seq": 8})
    assert [n.name for n in g.nodes] == ["a1", "b1", "a2", "b2"]
    # an illegal file order: each node moves only as far as it must
    g = Graph(name="g", inputs=[value("x", "int8", ["seq", 4])], outputs=["a2", "b2"],
              nodes=[nodes[2], nodes[3], nodes[0], nodes[1]], symbols={"seq": 8})
    assert [n.name for n in g.nodes] == ["a1", "a2", "b1", "b2"]


# --- names and types match their patterns exactly -------------------------------------------------------

NEWLINE_CASES = {   # field to edit -> a fragment the error must contain
    ("nodes", 0, "name"): "'embed\\n'",
    ("nodes", 0, "op"): "'Embedding\\n'",
    ("inputs", 0, "name"): "'ids\\n'",
    ("inputs", 0, "type"): "'int32\\n'",
    ("tensors", 0, "type"): "'int8\\n'",
    ("tensors", 0, "file"): "'tensors/table.npy\\n'",
    ("tensors", 0, "sha256"): "tensors[0].sha256",
}


@pytest.mark.parametrize("field", list(NEWLINE_CASES), ids=lambda f: ".".join(map(str, f)))
def test_a_trailing_newline_is_not_part_of_a_legal_name(bundle, field):
    def change(doc):
        target = doc
        for key in field[:-1]:
            target = target[key]
        target[field[-1]] += "\n"
    edit(bundle, change)
    with pytest.raises((BundleError, GraphError)) as info:
        intref.load(bundle)
    assert NEWLINE_CASES[field] in str(info.value), str(info.value)


def test_a_symbol_with_a_trailing_newline(bundle):
    edit(bundle, lambda doc: doc.update(symbols={"seq\n": 8}))
    with pytest.raises(SchemaError, match="seq"):
        intref.load(bundle)


def test_in_memory_names_match_exactly():
    with pytest.raises(SchemaError):
        graph([transpose("a", "x"), transpose("b\n", "a", "b")])
    with pytest.raises(intref.IntrefError):
        intref.inttypes.IntType.parse("int8\n")
# --- memory: bounded by what the graph declares, checked before allocation ----------------------------------

MIB = 1 << 20


def _zip_declaring_a_big_table(path, rows, cols, *, sha256):
    """A zip bundle (deflated) whose table tensor declares ``rows x cols`` int8 zeros: a few hundred
    kB on disk, ``rows * cols`` bytes once read. Written in chunks (the test itself stays small)."""
    source = path.parent / "source"
    intref.save(small_graph(), source)
    doc = json.loads((source / "graph.json").read_text())
    doc["tensors"][0].update(shape=[rows, cols], sha256=sha256)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((0,), np.int8))
    header.update(shape=(rows, cols))
    import io
    prefix = io.BytesIO()
    np.lib.format.write_array_header_1_0(prefix, header)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("graph.json", json.dumps(doc))
        with archive.open("tensors/table.npy", "w", force_zip64=True) as stream:
            stream.write(prefix.getvalue())
            zeros = bytes(MIB)
            for _ in range(rows * cols // MIB):
                stream.write(zeros)
        for member in ("tensors/w.npy", "tensors/bias.npy"):
            archive.write(source / member, member)
    return path


def _peak_bytes(action):
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_member_with_a_wrong_sha256_fails_before_its_declared_size_is_allocated(tmp_path):
    # 256 MiB of zeros deflate to ~256 kB: the member's declared size passes the ratio check, and the
    # old loader allocated all of it before hashing. Now the hash streams through one chunk at a time.
    path = _zip_declaring_a_big_table(tmp_path / "bomb.zip", 1 << 14, 1 << 14, sha256="0" * 64)
    assert os.path.getsize(path) < 2 * MIB

    def load():
        with pytest.raises(TensorFileError, match="tensors/table.npy: sha256"):
            intref.load(path)
    assert _peak_bytes(load) < 16 * MIB


def test_reading_a_zip_tensor_makes_no_copy(tmp_path):
    # a genuine 16 MiB table (its sha256 right): reading it costs the tensor once, not twice
    import hashlib
    rows = cols = 1 << 12
    digest = hashlib.sha256()
    header = np.lib.format.header_data_from_array_1_0(np.zeros((0,), np.int8))
    header.update(shape=(rows, cols))
    import io
    prefix = io.BytesIO()
    np.lib.format.write_array_header_1_0(prefix, header)
    digest.update(prefix.getvalue() + bytes(rows * cols))
    path = _zip_declaring_a_big_table(tmp_path / "big.zip", rows, cols, sha256=digest.hexdigest())

    def load():   # the table no longer fits its Embedding (vocab 10): the graph check fails after reading
        with pytest.raises(GraphError):
            intref.load(path)
    assert _peak_bytes(load) < rows * cols + 4 * MIB


# --- a directory bundle changed after load --------------------------------------------------------------------

def _mapped_table(bundle):
    loaded = intref.load(bundle)
    assert isinstance(loaded.tensors["table"].data.base, np.memmap) or loaded.tensors["table"].source is not None
    return loaded


def test_a_tensor_file_truncated_after_load_is_reported_not_a_sigbus(bundle):
    loaded = _mapped_table(bundle)
    expected = intref.run(loaded, FEEDS)["fc_q"]
    with open(bundle / "tensors" / "table.npy", "r+b") as stream:
        stream.truncate(64)
    with pytest.raises(TensorFileError, match=r"tensors/table.npy: .*changed after the bundle was loaded: its size"):
        intref.run(loaded, FEEDS)
    assert expected.shape == (1, 3, 4)


def test_a_tensor_file_rewritten_in_place_after_load_is_reported(bundle):
    loaded = _mapped_table(bundle)
    path = bundle / "tensors" / "table.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1                          # same size, one value differs
    stat = os.stat(path)
    with open(path, "r+b") as stream:
        stream.write(raw)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))   # coarse clocks: make the change visible
    with pytest.raises(TensorFileError, match="rewritten"):
        intref.run(loaded, FEEDS)


def test_a_tensor_file_replaced_after_load_is_reported(bundle):
    loaded = _mapped_table(bundle)
    path = bundle / "tensors" / "table.npy"
    raw = path.read_bytes()
    os.remove(path)
    path.write_bytes(raw)                 # the same bytes in a new file: the map still reads the old one
    with pytest.raises(TensorFileError, match="replaced|rewritten"):
        intref.run(loaded, FEEDS)


def test_an_unchanged_bundle_runs_and_a_zip_bundle_holds_private_data(bundle, tmp_path):
    loaded = intref.load(bundle)
    assert loaded.tensors["table"].source is not None        # mapped, so watched
    assert loaded.tensors["w"].source is None                # int4 unpacked: a private array
    intref.run(loaded, FEEDS)
    intref.save(small_graph(), tmp_path / "b.zip")
    zipped = intref.load(tmp_path / "b.zip")
    assert all(t.source is None for t in zipped.tensors.values())
    intref.run(zipped, FEEDS)
