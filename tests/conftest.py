"""Hypothesis profiles, chosen by the HYPOTHESIS_PROFILE environment variable.

- ``ci``: derandomized (the same examples on every run), no deadline, prints the reproduction blob.
- ``dev`` (default): random, no deadline, fewer examples for a quick local loop.
- ``thorough``: many more examples, for a long soak before a release.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=5000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
