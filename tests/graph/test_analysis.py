"""Load-time analysis of in-memory graphs: every defect raises its specific error naming the node or
value, nodes are put in a stable topological order, and may_overflow lists narrow declared types."""

import numpy as np
import pytest

import intref
from intref.build import GraphBuilder
from intref.errors import (CycleError, DuplicateNameError, GraphError, MissingValueError, SchemaError,
                           ShapeMismatchError, TypeMismatchError, UnknownOpError, UnusedValueError)
from intref.graph import Graph, Node, Tensor, ValueInfo
from intref.inttypes import IntType
from intref.ops import REGISTRY
from intref.testing import assert_graph_error as raises
from intref.testing import assert_identical

INT8 = IntType(8)


def value(name, type_name="int8", shape=None, range=None):
    return ValueInfo(name, IntType.parse(type_name), None if shape is None else tuple(shape), range)


def transpose(name, source, out=None, *, out_type="int8", shape=None):
    return Node(name, "Transpose", (source,), (value(name if out is None else out, out_type, shape),),
                {"perm": [1, 0]})


def tensor(name, data, type_name="int8"):
    data = np.asarray(data, dtype=IntType.parse(type_name).storage)
    data.setflags(write=False)
    return Tensor(name, IntType.parse(type_name), data)


def graph(nodes, *, inputs=None, outputs=("b",), tensors=(), symbols=None):
    inputs = [value("x", "int8", ["seq", 4])] if inputs is None else inputs
    return Graph(name="g", inputs=inputs, outputs=list(outputs), nodes=nodes, tensors=tensors,
                 symbols={"seq": 8} if symbols is None else symbols)


def chain():
    return [transpose("a", "x"), transpose("b", "a")]



def test_a_valid_graph_and_its_values():
    g = graph(chain())
    assert [n.name for n in g.nodes] == ["a", "b"]
    assert g.values["x"].shape == ("seq", 4) and (g.values["x"].lo, g.values["x"].hi) == (-128, 127)
    assert g.values["a"].shape == (4, "seq") and g.values["b"].shape == ("seq", 4)
    assert g.may_overflow == ()
    x = np.arange(12, dtype=np.int8).reshape(3, 4)
    assert_identical(intref.run(g, {"x": x})["b"], x)


def test_unknown_op_lists_the_known_ops():
    error = raises(UnknownOpError, lambda: graph([transpose("a", "x"), Node("b", "Softmax", ("a",), (value("b"),))]),
                   "b")
    assert "'Softmax'" in str(error)
    for name in REGISTRY:
        assert name in str(error)


def test_duplicate_names():
    raises(DuplicateNameError, lambda: graph([transpose("a", "x"), transpose("a", "a", "b")]), "a")   # two nodes
    raises(DuplicateNameError, lambda: graph([transpose("a", "x", "x"), transpose("b", "x")]), "x")   # output = input
    raises(DuplicateNameError, lambda: graph([transpose("a", "x"), transpose("b", "x", "a")]), "a")   # two outputs
    raises(DuplicateNameError, lambda: graph(chain(), tensors=[tensor("x", [1])]), "x")               # tensor = input
    raises(DuplicateNameError, lambda: graph(chain(), tensors=[tensor("t", [1]), tensor("t", [2])]))
    raises(DuplicateNameError, lambda: graph(chain(), outputs=("b", "b")))
    raises(DuplicateNameError, lambda: graph(chain(), inputs=[value("x", shape=[4]), value("x", shape=[4])]), "x")
    # a node may share its output's name (GraphBuilder's default), and node names are their own namespace
    graph([transpose("a", "x", "a"), transpose("x", "a", "b")])


def test_missing_values():
    raises(MissingValueError, lambda: graph([transpose("a", "nowhere"), transpose("b", "a")]), "a")
    raises(MissingValueError, lambda: graph(chain(), outputs=("c",)), "c")


def test_cycle():
    nodes = [transpose("a", "d", "c"), transpose("b", "c", "d"), transpose("e", "x", "b")]
    error = raises(CycleError, lambda: graph(nodes, outputs=("b", "c")))
    assert error.node in ("a", "b")


def test_unused_values():
    raises(UnusedValueError, lambda: graph(chain(), tensors=[tensor("t", [1, 2])]), "t")
    raises(UnusedValueError, lambda: graph(chain(), inputs=[value("x", shape=["seq", 4]), value("y", shape=[2])]),
           "y")
    raises(UnusedValueError, lambda: graph(chain() + [transpose("dead", "x")]), "dead")
    raises(UnusedValueError, lambda: graph(chain() + [transpose("dead", "x"), transpose("dead2", "dead")]), "dead2")
    raises(UnusedValueError, lambda: graph(chain(), outputs=("a",)), "b")


@pytest.mark.parametrize("make", [
    lambda: graph(chain(), symbols={"1seq": 8}),
    lambda: graph(chain(), symbols={"seq": 0}),
    lambda: graph(chain(), symbols={"seq": True}),
    lambda: graph(chain(), symbols={"seq": (1 << 31) + 1}),
    lambda: graph(chain(), symbols={"seq": 8.0}),
    lambda: graph(chain(), inputs=[value("x", shape=["len", 4])]),         # undeclared symbol
    lambda: graph(chain(), inputs=[value("x")]),                           # graph input without a shape
    lambda: graph(chain(), inputs=[value("x", shape=["seq", -4])]),        # negative dim
    lambda: graph(chain(), inputs=[value("x", shape=["seq", 4.0])]),       # float dim
    lambda: graph(chain(), inputs=[value("x", shape=["seq", True])]),      # bool dim
    lambda: graph([transpose("bad name", "x", "a"), transpose("b", "a")]),
    lambda: graph([transpose("a", "x", "a/b"), transpose("b", "a/b")]),
    lambda: graph([transpose("a", "x", "a" * 201), transpose("b", "a" * 201)]),
    lambda: graph([transpose("a", "x", ""), transpose("b", "")]),
    lambda: graph(chain(), tensors=[tensor(".t", [1])]),
], ids=["symbol-name", "symbol-zero", "symbol-bool", "symbol-huge", "symbol-float", "undeclared-symbol",
        "no-shape", "negative-dim", "float-dim", "bool-dim", "node-name", "value-name", "long-name", "empty-name",
        "tensor-name"])
def test_bad_names_and_symbols(make):
    raises(SchemaError, make)


def test_declared_output_shape_must_equal_inferred():
    graph([transpose("a", "x", shape=[4, "seq"]), transpose("b", "a", shape=["seq", 4])])
    raises(ShapeMismatchError, lambda: graph([transpose("a", "x", shape=["seq", 4]), transpose("b", "a")]), "a")
    raises(ShapeMismatchError, lambda: graph([transpose("a", "x", shape=[4, 8]), transpose("b", "a")]), "a")


def test_input_range_and_counts():
    raises(TypeMismatchError, lambda: graph(chain(), inputs=[value("x", shape=["seq", 4], range=(0, 128))]), "x")
    raises(TypeMismatchError, lambda: graph(chain(), inputs=[value("x", shape=["seq", 4], range=(3, 2))]), "x")
    wrong_inputs = Node("a", "Transpose", ("x", "x"), (value("a"),), {"perm": [1, 0]})
    assert "takes 1..1 inputs" in str(raises(GraphError, lambda: graph([wrong_inputs, transpose("b", "a")]), "a"))
    wrong_outputs = Node("a", "Transpose", ("x",), (value("a"), value("a2")), {"perm": [1, 0]})
    raises(GraphError, lambda: graph([wrong_outputs, transpose("b", "a")], outputs=("b", "a2")), "a")


def test_tensor_values_must_fit_their_type():
    def linear(t):
        node = Node("fc", "Linear", ("x", "w"), (value("fc", "int32"),))
        return graph([node], outputs=("fc",), tensors=[t])
    linear(tensor("w", [[1, -8, 7, 0]], "int4"))
    bad = Tensor("w", IntType(4), np.array([[1, -9, 7, 0]], dtype=np.int8))
    raises(TypeMismatchError, lambda: linear(bad), "w")
    wrong_dtype = Tensor("w", IntType(8), np.array([[1, 2, 3, 4]], dtype=np.int16))
    raises(TypeMismatchError, lambda: linear(wrong_dtype), "w")
    b = GraphBuilder("g")
    with pytest.raises(TypeMismatchError):                    # the builder never wraps silently
        b.tensor("w", np.array([[200, 1]], dtype=np.int32), "int8")
    with pytest.raises(TypeMismatchError):
        b.tensor("w4", np.array([[8, 1]], dtype=np.int8), layout="int4_packed")
    b.tensor("w4", np.array([[7, -8]], dtype=np.int8), layout="int4_packed")
    assert b.tensors[-1].type == IntType(4) and b.tensors[-1].data.dtype == np.int8


def test_builder_names():
    b = GraphBuilder("g", symbols={"seq": 4})
    x = b.input("x", "int8", ["seq", 2])
    y = b.add("Transpose", [x], "int8", name="t", out_name="t", attributes={"perm": [1, 0]})   # same name: fine
    z = b.add("Transpose", [y], "int8", name="u", out_name="z", attributes={"perm": [1, 0]})
    for clash in ("x", "t", "u", "z"):
        raises(DuplicateNameError, lambda: b.add("Transpose", [z], "int8", name=clash, attributes={"perm": [1, 0]}),
               clash)
    raises(DuplicateNameError, lambda: b.add("Transpose", [z], "int8", name="v", out_name="u"), "u")
    b.output(z)
    assert [n.name for n in b.build().nodes] == ["t", "u"]


def test_tensors_may_be_any_iterable():
    node = Node("fc", "Linear", ("x", "w"), (value("fc", "int32"),))
    g = graph([node], outputs=("fc",), tensors=(t for t in [tensor("w", [[1, 2, 3, 4]])]))
    assert list(g.tensors) == ["w"]


def test_nodes_out_of_order_are_sorted_and_a_legal_order_is_kept():
    b = transpose("b", "a")
    a = transpose("a", "x")
    assert [n.name for n in graph([b, a]).nodes] == ["a", "b"]
    # x -> a -> b and x -> c -> d, joined by a residual add e: the file order is legal and must stay
    nodes = [transpose("a", "x"), transpose("b", "a"), transpose("c", "x"), transpose("d", "c"),
             Node("e", "ResidualAdd", ("b", "d"), (value("e"),),
                  {"multiplier_a": 1, "shift_a": 0, "multiplier_b": 1, "shift_b": 0})]
    assert [n.name for n in graph(nodes, outputs=("e",)).nodes] == ["a", "b", "c", "d", "e"]
    shuffled = [nodes[4], nodes[3], nodes[1], nodes[2], nodes[0]]
    order = [n.name for n in graph(shuffled, outputs=("e",)).nodes]
    assert order.index("a") < order.index("b") < order.index("e")
    assert order.index("c") < order.index("d") < order.index("e")


def test_may_overflow_lists_declared_types_narrower_than_the_worst_case():
    weight = tensor("w", [[100, 100, 100, 100]])
    x = [value("x", "int8", ["seq", 4], range=(0, 127))]
    nodes = [Node("fc", "Linear", ("x", "w"), (value("fc", "int16"),)),                # 4 * 100 * 127 = 50800
             Node("out", "Requantize", ("fc",), (value("out", "int8"),), {"multiplier": 1, "shift": 0})]
    g = graph(nodes, inputs=x, outputs=("out",), tensors=[weight])
    assert g.may_overflow == ("fc",)                            # Requantize saturates by its own attribute
    wide = graph([Node("fc", "Linear", ("x", "w"), (value("fc", "int17"),))], inputs=x, outputs=("fc",),
                 tensors=[weight])
    assert wide.may_overflow == ()
    assert (wide.values["fc"].lo, wide.values["fc"].hi) == (0, 50800)
    # where the declared type may overflow, the run's policy decides, and wrap can give any value of the
    # type: [0, 32767] (the worst case clamped to the type) would be unsound downstream
    assert (g.values["fc"].lo, g.values["fc"].hi) == (-(1 << 15), (1 << 15) - 1)
    wrapped = intref.run(g, {"x": np.full((1, 4), 127, dtype=np.int8)}, overflow="wrap", trace=True)["fc"]
    assert int(wrapped[0, 0]) == 50800 - 65536 and g.values["fc"].lo <= wrapped.min()
