"""The README's end-to-end Python example (load, run, write golden, verify) runs as written and
prints what its comments say."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## End to end in Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_end_to_end_example_runs_and_prints_what_it_says(capsys, monkeypatch):
    code = readme_example()
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md (End to end in Python)", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    promised = [line.split("# ", 1)[1].strip() for line in code.splitlines()
                if line.startswith("print(") and "# " in line]
    assert printed == promised
