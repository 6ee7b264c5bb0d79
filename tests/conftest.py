"""Hypothesis profiles, chosen by the HYPOTHESIS_PROFILE environment variable.

- ``ci``: derandomized (the same examples on every run), no deadline, prints the reproduction blob.
- ``dev`` (default): random, no deadline, fewer examples for a quick local loop.
- ``thorough``: many more examples, for a long soak before a release.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=5000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def minilm_slice():
    """``take(calibration, test)`` -> ``(model path, calibration sentences, test sentences)`` of
    all-MiniLM-L6-v2 and the VADER movie reviews, or a skip naming what is missing."""
    def take(calibration: int, test: int):
        from intref.convert.minilm import MissingResource, minilm_path, read_sentences
        try:
            return (minilm_path(), read_sentences("movie", n=calibration, split="calibration"),
                    read_sentences("movie", n=test, split="test"))
        except MissingResource as exc:
            pytest.skip(str(exc))
    return take
