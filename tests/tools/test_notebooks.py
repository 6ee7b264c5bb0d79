"""Every notebook's code cells run against the current API (with a stand-in for matplotlib when the
``notebook`` extra is absent: the computations run, the plots are not drawn)."""

import json
import pathlib
import sys
import types

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def _stub_matplotlib():
    pyplot = types.ModuleType("matplotlib.pyplot")
    pyplot.__getattr__ = lambda name: (lambda *args, **kwargs: None)
    package = types.ModuleType("matplotlib")
    package.pyplot = pyplot
    return {"matplotlib": package, "matplotlib.pyplot": pyplot}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_cells_run(path, monkeypatch, capsys):
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        for name, module in _stub_matplotlib().items():
            monkeypatch.setitem(sys.modules, name, module)
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells, f"{path.name} has no code"
    namespace = {"__name__": "__notebook__"}
    for number, cell in enumerate(cells):
        source = "".join(cell["source"])
        try:
            exec(compile(source, f"{path.name}[cell {number}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{path.name} code cell {number} failed: {type(exc).__name__}: {exc}") from exc
    out = capsys.readouterr().out
    assert "bound holds: True" in out and "one-hot row: [[255" in out
