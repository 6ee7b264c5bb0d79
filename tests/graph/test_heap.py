"""intref.heap: the malloc settings are applied once, in full, through glibc's mallopt; the
opt-out and a glibc refusal are honoured or reported by name; the run's results never depend on them."""

import os
import subprocess
import sys

import pytest

from intref.errors import IntrefError
from intref.heap import SETTINGS, apply_settings, glibc_mallopt


def recorder(answer=1):
    calls = []

    def mallopt(parameter, value):
        calls.append((parameter, value))
        return answer
    return calls, mallopt


def test_every_setting_is_applied_by_default():
    calls, mallopt = recorder()
    outcome = apply_settings({}, mallopt)
    assert calls == [(parameter, value) for _, parameter, value in SETTINGS]
    assert outcome.startswith("freed pages kept") and "M_TRIM_THRESHOLD 256 MB" in outcome
    assert calls == [(-3, 32 << 20), (-1, 256 << 20), (-2, 128 << 20)]   # glibc's <malloc.h> numbers


def test_opt_out_and_other_libraries_change_nothing():
    calls, mallopt = recorder()
    assert "INTREF_MALLOC=system" in apply_settings({"INTREF_MALLOC": "system"}, mallopt)
    assert "not glibc" in apply_settings({}, None)
    assert calls == []


@pytest.mark.parametrize("value", ["", "off", "KEEP", "0"])
def test_an_unknown_choice_is_refused_by_name(value):
    calls, mallopt = recorder()
    with pytest.raises(IntrefError, match=r"INTREF_MALLOC=.*expected one of keep, system"):
        apply_settings({"INTREF_MALLOC": value}, mallopt)
    assert calls == []


def test_a_refused_setting_is_reported():
    _, mallopt = recorder(answer=0)
    with pytest.raises(IntrefError, match=r"glibc refused mallopt\(M_MMAP_THRESHOLD, 33554432\).*INTREF_MALLOC=system"):
        apply_settings({}, mallopt)


@pytest.mark.skipif(not sys.platform.startswith("linux") or glibc_mallopt() is None, reason="needs glibc")
def test_glibc_accepts_the_settings_and_results_do_not_depend_on_them():
    """In fresh processes (the settings are process-wide): glibc's own mallopt accepts every value,
    and the demo graph's run gives the same bytes with and without them."""
    script = ("import hashlib, numpy as np, intref, intref.heap as h\n"
              "from intref.models.demo import make_demo\n"
              "from intref.models.demo_golden import padded_feed\n"
              "out = intref.run(make_demo()[0], padded_feed(), trace=True)\n"
              "print(h.keep_freed_pages())\n"
              "print(hashlib.sha256(b''.join(out[k].tobytes() for k in sorted(out))).hexdigest())\n")
    lines = {}
    for choice in ("keep", "system"):
        env = {**os.environ, "INTREF_MALLOC": choice}
        lines[choice] = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                       check=True).stdout.splitlines()
    assert lines["keep"][0].startswith("freed pages kept") and "INTREF_MALLOC=system" in lines["system"][0]
    assert lines["keep"][1] == lines["system"][1]
