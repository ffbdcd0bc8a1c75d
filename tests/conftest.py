"""Test configuration: Hypothesis profiles and shared fixtures.

Profiles: ``ci`` (derandomized, the default under ``CI=true``), ``dev`` (the default
otherwise) and ``deep`` (many more examples for local runs:
``HYPOTHESIS_PROFILE=deep pytest``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
