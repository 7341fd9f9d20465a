"""The fuzz suite's Hypothesis settings, applied to its own tests only (`@FUZZ`), never loaded as the global
profile: the property tests elsewhere keep their own example counts whatever order pytest imports modules in.

`ci` (the default) is small, derandomized (a failure reproduces on every run), has no deadline (the sandbox is real
I/O) and does not shrink (a failing runtime must not turn a 20 s suite into minutes of replays; the unshrunk input is
printed). `HYPOTHESIS_PROFILE=fuzz` (`make fuzz`) runs many more randomized examples and shrinks what it finds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
PROFILES = {
    "ci": settings(
        max_examples=5,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=_QUIET,
        print_blob=True,
    ),
    "fuzz": settings(max_examples=300, deadline=None, suppress_health_check=_QUIET, print_blob=True),
}
FUZZ = PROFILES[os.environ.get("HYPOTHESIS_PROFILE", "ci")]
# A subprocess per example: one example per action in CI (the in-process fuzz covers each action's inputs with the
# profile's count), a fifth of the profile's under `make fuzz`.
FEWER = settings(FUZZ, max_examples=max(1, FUZZ.max_examples // 5))
