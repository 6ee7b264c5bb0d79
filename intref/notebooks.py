"""The study notebooks: execute them, render them to HTML with their plots, keep them stripped.

    intref notebooks render --out DIR [--only NAME ...]   execute top to bottom, write DIR/<name>.html
    intref notebooks strip [--only NAME ...]              drop outputs and execution counts in place
    intref notebooks check                                exit 1 if a notebook holds outputs (git must not)

``python -m intref.notebooks ...`` is the same command. Needs the ``notebooks`` extra (jupyter,
matplotlib, nbclient, nbformat, nbconvert, ipykernel); the kernel is this interpreter's own
``python3`` kernelspec, started with this checkout on its ``PYTHONPATH``. The notebooks live in the
repository's ``notebooks/`` (an installed intref looks in ``./notebooks``; ``--src`` names another
directory); they are not part of the wheel.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
# a checkout's notebooks/ beside the package; installed from a wheel, the one in the working directory
DEFAULT_SRC = ROOT / "notebooks" if (ROOT / "notebooks").is_dir() else Path("notebooks")
KERNEL = "python3"
EXTRA_HINT = "pip install 'intref[notebooks]'"


def notebook_paths(src=DEFAULT_SRC, names: Optional[Sequence[str]] = None) -> List[Path]:
    """The ``*.ipynb`` files of ``src`` (sorted), or the named ones (``gelu`` or ``gelu.ipynb``)."""
    src = Path(src)
    found = sorted(src.glob("*.ipynb"))
    if not names:
        if not found:
            raise FileNotFoundError(f"{src}: no notebooks (*.ipynb) there")
        return found
    by_stem = {p.stem: p for p in found}
    missing = [n for n in names if Path(n).stem not in by_stem]
    if missing:
        raise FileNotFoundError(f"{src}: no notebook named {', '.join(missing)}; there are: {', '.join(by_stem)}")
    return [by_stem[Path(n).stem] for n in names]


def committed_outputs(notebook) -> List[str]:
    """What a stripped notebook must not hold: one line per code cell with outputs or an execution count."""
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index}: {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index}: execution_count {cell['execution_count']}")
    return problems


def strip(notebook):
    """Drop every code cell's outputs and execution count (in place); return the notebook."""
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def execute(path, *, timeout: int = 600):
    """Run a notebook top to bottom in a fresh ``python3`` kernel whose working directory is the
    notebook's own; return the executed ``nbformat`` notebook. A failing cell raises
    ``nbclient.exceptions.CellExecutionError`` naming the cell and the traceback."""
    import nbformat
    from nbclient import NotebookClient
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return notebook


def render(out_dir, *, src=DEFAULT_SRC, names: Optional[Sequence[str]] = None, timeout: int = 600) -> List[Path]:
    """Execute each notebook and write ``out_dir/<name>.html`` with its outputs and plots embedded."""
    from nbconvert import HTMLExporter
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths(src, names):
        body, _ = HTMLExporter().from_notebook_node(execute(path, timeout=timeout))
        target = out_dir / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("render", "strip", "check"),
                        help="render (execute, write HTML), strip (drop outputs in place) or check (exit 1 if a notebook holds outputs)")
    parser.add_argument("--only", nargs="+", dest="names", metavar="NAME", help="these notebooks (default: all)")
    parser.add_argument("--src", default=str(DEFAULT_SRC), metavar="DIR", help="the notebooks' directory")
    parser.add_argument("--out", metavar="DIR", help="render: where the HTML files go")
    parser.add_argument("--timeout", type=int, default=600, help="render: seconds per cell at most")


def run(args) -> int:
    """The command: 0 done (or clean), 1 ``check`` found outputs, 2 bad usage or a missing extra."""
    try:                         # the names first: a wrong one is a usage error with or without the extra
        paths = notebook_paths(args.src, args.names)
    except FileNotFoundError as exc:
        print(f"intref notebooks: error: {exc}", file=sys.stderr)
        return 2
    try:
        import nbformat
    except ImportError:
        print(f"intref notebooks: error: nbformat is not installed; {EXTRA_HINT}", file=sys.stderr)
        return 2
    if args.action == "render":
        if not args.out:
            print("intref notebooks: error: render needs --out DIR", file=sys.stderr)
            return 2
        try:
            written = render(args.out, src=args.src, names=args.names, timeout=args.timeout)
        except ImportError as exc:
            print(f"intref notebooks: error: {exc}; {EXTRA_HINT}", file=sys.stderr)
            return 2
        print("\n".join(f"wrote {p}" for p in written))
        return 0
    dirty = 0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        problems = committed_outputs(notebook)
        if args.action == "strip" and problems:
            nbformat.write(strip(notebook), path)
            print(f"stripped {path}")
        elif problems:
            dirty += 1
            print(f"{path}: holds outputs ({'; '.join(problems[:3])}); run: intref notebooks strip --only {path.stem}")
    return 1 if dirty else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="intref notebooks", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
