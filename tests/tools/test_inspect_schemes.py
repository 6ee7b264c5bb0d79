"""intref inspect's per-layer scheme lines: bits, grouping (per tensor / channel / out-groups /
in-groups) and the activation mode, read from the graph."""

import numpy as np

from intref.build import GraphBuilder
from intref.inspect import describe
from intref.inspect_schemes import layer_schemes


def test_every_scheme_is_named():
    b = GraphBuilder("schemes", symbols={"batch": 2})
    x = b.input("x", "int8", ["batch", 8])
    wide = b.input("wide", "int32", ["batch", 8])
    w8 = np.ones((4, 8), np.int8)
    a = b.add("Linear", [x, b.tensor("a.weight", w8, scale=0.1)], "int32", name="a")
    rows = b.add("Linear", [x, b.tensor("rows.weight", w8, scale=[0.1, 0.1, 0.2, 0.2], scale_axis=0)], "int32",
                 name="rows")
    chan = b.add("Linear", [x, b.tensor("chan.weight", w8, scale=[0.1, 0.2, 0.3, 0.4], scale_axis=0)], "int32",
                 name="chan")
    bare = b.add("Linear", [x, b.tensor("bare.weight", w8)], "int32", name="bare")
    t = b.add("TokenScale", [wide], "int32", name="t")
    q = b.add("TokenQuantize", [wide, t], "int8", name="q")
    g = b.add("GroupLinear", [q, b.tensor("g.weight", w8, "int4", layout="int4_packed"),
                              b.tensor("g.m", np.full((4, 2), 1 << 31, np.uint32))], "int32", name="g",
              attributes={"group_size": 4, "shift": 31})
    b.output(a, rows, chan, bare, g)
    graph = b.build()
    assert layer_schemes(graph) == [
        ("a", "w8 per tensor, act static"), ("rows", "w8 out-groups of 2 rows, act static"),
        ("chan", "w8 per channel, act static"), ("bare", "w8 scale not recorded, act static"),
        ("g", "w4 in-groups of 4, act token")]
    text = describe(graph)
    assert "layers       a     w8 per tensor, act static" in text
    assert "             g     w4 in-groups of 4, act token" in text
