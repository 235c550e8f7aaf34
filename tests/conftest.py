"""Settings shared by every test directory."""

import os

from hypothesis import HealthCheck, settings

# CI machines have 2 cores and run tests in parallel: wall-clock deadlines make property
# tests flaky there, so no per-example deadline. Choose a profile with HYPOTHESIS_PROFILE.
settings.register_profile("default", deadline=None)
settings.register_profile(
    "ci", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))
