"""Named Python hooks: the rare escape hatch for what an action's data cannot express.

An action file names a hook with `hook: name`; the loader refuses a name that is not registered here. A hook
receives the validated inputs and returns them changed (for instance, to derive an input from others) before the
request is built. The reference actions need none; a few later ones do, where the template language cannot say it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HOOKS", "Hook"]

Hook = Callable[[dict[str, Any]], dict[str, Any]]


def _include_meta(values: dict[str, Any]) -> dict[str, Any]:
    """A yes/no `includeMeta` input becomes the list of metadata kinds the API wants (`["fields"]`), or nothing."""
    wanted = values.pop("includeMeta", False)
    return {**values, "includeMeta": ["fields"]} if wanted is True else values


def _bulk_read_callback(inputs: dict[str, Any]) -> dict[str, Any]:
    """A callback URL becomes the callback object the API needs ({url, method}); the template language cannot
    drop an object when only one of its members is absent."""
    url = inputs.get("callbackUrl")
    if url is None or "callback" in inputs:
        return inputs
    return {**inputs, "callback": {"url": url, "method": "post"}}


HOOKS: dict[str, Hook] = {"include_meta": _include_meta, "bulk_read_callback": _bulk_read_callback}
