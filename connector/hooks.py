"""Named Python hooks: the rare escape hatch for what an action's data cannot express.

An action file names a hook with `hook: name`; the loader refuses a name that is not registered here. A hook
receives the validated inputs and returns them changed (for instance, to derive an input from others) before the
request is built. The reference actions need none; a few later ones do, where the template language cannot say it
(see connector/strategies/crm_hooks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HOOKS", "Hook"]

Hook = Callable[[dict[str, Any]], dict[str, Any]]


# Registered by the strategies that need them (connector/strategies/crm_hooks.py), so that this runtime module names
# no product.
HOOKS: dict[str, Hook] = {}
