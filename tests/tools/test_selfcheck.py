"""The README's first command: ``intref selfcheck`` verifies every kernel and exits 0."""

import io

from intref import selfcheck
from intref.cli import main


def test_selfcheck_passes_and_reports_every_kernel():
    out = io.StringIO()
    assert selfcheck.main(out=out) == 0
    text = out.getvalue()
    for name, _ in selfcheck.CHECKS:
        assert name in text
    assert "FAILED" not in text and text.rstrip().endswith("all kernels equal their specs")


def test_selfcheck_reports_a_broken_kernel(monkeypatch):
    def broken(rng):
        raise AssertionError("i_gelu: kernel != spec at [3]")
    monkeypatch.setattr(selfcheck, "CHECKS", [("i_gelu", broken)])
    out = io.StringIO()
    assert selfcheck.main(out=out) == 1
    assert "FAILED" in out.getvalue() and "[3]" in out.getvalue()


def test_cli_usage_error_exits_2(capsys):
    try:
        main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
