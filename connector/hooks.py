"""Named Python hooks: the rare escape hatch for what an action's data cannot express.

An action file names a hook with `hook: name`; the loader refuses a name that is not registered here. A hook
receives the validated inputs and returns them changed (for instance, to derive an input from others) before the
request is built. The 14 reference actions need none: everything they do is data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HOOKS", "Hook"]

Hook = Callable[[dict[str, Any]], dict[str, Any]]

HOOKS: dict[str, Hook] = {}
