"""Test-only set-up: a fixed ``hypothesis`` profile, so the fuzzing suite is the same on
every run and stays within the unit-test budget.

``ci`` (the default) tries a fixed, derandomized set of examples per test; set
``HYPOTHESIS_PROFILE=dev`` to draw new random examples (more of them) while developing.
"""

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the fuzzing suite is skipped without hypothesis
    settings = None

if settings is not None:
    _common = dict(deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("ci", derandomize=True, max_examples=25, database=None,
                              **_common)
    settings.register_profile("dev", max_examples=200, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
