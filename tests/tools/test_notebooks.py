"""The study notebooks (notebooks/*.ipynb): stripped in git, built on intref, each ending with a
conclusion that names the tests guarding it, and each executing top to bottom in a real Jupyter
kernel (nbclient; skipped, with the reason, when the ``notebooks`` extra is not installed).
"""

import importlib.util
import io
import json
import pathlib
import re
import tokenize

import pytest

from intref import cli
from intref.notebooks import committed_outputs, notebook_paths

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = notebook_paths(ROOT / "notebooks")
EXTRA = ("nbclient", "nbformat", "nbconvert", "ipykernel", "matplotlib")
MISSING = [name for name in EXTRA if importlib.util.find_spec(name) is None]
needs_jupyter = pytest.mark.skipif(bool(MISSING), reason=f"the notebooks extra is not installed (missing "
                                                         f"{', '.join(MISSING)}): pip install 'intref[notebooks]'")
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _code(path) -> str:
    return "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")


def _operators(code: str) -> list:
    """The code's tokens other than strings and comments (a shift named in a label is no shift)."""
    skip = (tokenize.STRING, tokenize.COMMENT)
    return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in skip]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_holds_no_outputs(path):
    problems = committed_outputs(json.loads(path.read_text(encoding="utf-8")))
    assert not problems, f"{path.name}: {problems[:5]}; run: intref notebooks strip --only {path.stem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_computes_with_intref_and_has_no_integer_kernel_of_its_own(path):
    """Every integer result comes from intref; a right shift in a notebook is a kernel in disguise
    (``1 << k`` to size a range is fine)."""
    code = _code(path)
    assert re.search(r"^\s*(from intref|import intref)", code, re.M), f"{path.name} does not import intref"
    shifts = [t for t in _operators(code) if t in (">>", ">>=", "right_shift", "left_shift")]
    assert not shifts, f"{path.name} does integer arithmetic itself: {shifts[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_a_conclusion_naming_existing_tests(path):
    last = _cells(path)[-1]
    text = "".join(last["source"])
    assert last["cell_type"] == "markdown" and text.lstrip().startswith("## Conclusion"), \
        f"{path.name}: the last cell must be a '## Conclusion' markdown cell"
    refs = TEST_REF.findall(text)
    assert refs, f"{path.name}: the conclusion names no test (tests/...py::test_name)"
    for file, name in refs:
        source = (ROOT / file).read_text(encoding="utf-8") if (ROOT / file).is_file() else ""
        assert re.search(rf"^def {name}\(", source, re.M), f"{path.name} names {file}::{name}, which does not exist"


@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom_and_plots(path):
    from intref.notebooks import execute
    executed = execute(path, timeout=600)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if "NO MEASUREMENT:" not in text:     # a notebook on real data says so when the data is absent
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} draws no plot"


def _tiny_notebook(directory, with_output=False):
    import nbformat
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("import intref\nimport matplotlib.pyplot as plt\n"
                                     "plt.plot([0, 1], [1, 0]); plt.show()\nprint(intref.__version__)")
    if with_output:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
        cell.execution_count = 1
    nb.cells = [cell]
    path = pathlib.Path(directory) / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


@needs_jupyter
def test_render_command_writes_html_with_the_plot(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _tiny_notebook(src)
    assert cli.main(["notebooks", "render", "--src", str(src), "--out", str(tmp_path / "html")]) == 0
    html = (tmp_path / "html" / "tiny.html").read_text(encoding="utf-8")
    assert "data:image/png;base64" in html


@pytest.mark.skipif(importlib.util.find_spec("nbformat") is None, reason="nbformat is not installed")
def test_check_fails_on_outputs_and_strip_removes_them(tmp_path, capsys):
    path = _tiny_notebook(tmp_path, with_output=True)
    assert cli.main(["notebooks", "check", "--src", str(tmp_path)]) == 1
    assert "holds outputs" in capsys.readouterr().out
    assert cli.main(["notebooks", "strip", "--src", str(tmp_path)]) == 0
    assert cli.main(["notebooks", "check", "--src", str(tmp_path)]) == 0
    assert committed_outputs(json.loads(path.read_text())) == []


def test_unknown_notebook_name_is_a_usage_error(capsys):
    assert cli.main(["notebooks", "check", "--only", "no-such-notebook"]) == 2
    assert "no notebook named no-such-notebook" in capsys.readouterr().err
