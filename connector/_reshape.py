"""Reshaping values inside automation inputs: the operators a reference alone cannot express.

    records:
      $map: ${trigger.records}          one element per element of the list, built from `to`
      to:
        Store_Id: ${item.id}            ${item} is the element being mapped
        Plan: ${item.plan_name?}        a trailing ? gives null where the member is missing
        Payload: {$json: "${item}"}     the value as compact JSON text

`{"$map": LIST, "to": TEMPLATE}` resolves TEMPLATE once per element of LIST (a reference or a literal list) with
`${item}` bound to that element (inside a step with for_each, it hides that step's item). `{"$json": VALUE}` is
VALUE (resolved) as JSON text, keys in their order, no spaces. A reference segment that ends in `?` yields null
when that member, or the list item, is missing, where a plain segment is an error. All of it is pure and
deterministic, so a Temporal workflow can resolve inputs that use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["OPERATORS", "apply", "is_operator", "map_scopes", "operator_pointers"]

OPERATORS = ("$map", "$json")
Resolve = Callable[[Any, Mapping[str, Any], str], Any]


def is_operator(value: Any) -> bool:
    """An object that is one of the operators: {"$map", "to"} or {"$json"}."""
    if not isinstance(value, Mapping):
        return False
    keys = set(value)
    return keys == {"$map", "to"} or keys == {"$json"}


def apply(value: Mapping[str, Any], context: Mapping[str, Any], pointer: str, resolve: Resolve) -> Any:
    """The operator's result; `resolve(value, context, pointer)` resolves what it holds."""
    if "$json" in value:
        resolved = resolve(value["$json"], context, f"{pointer}/$json")
        return json.dumps(resolved, ensure_ascii=False, separators=(",", ":"))
    elements = resolve(value["$map"], context, f"{pointer}/$map")
    if not isinstance(elements, list):
        from connector.automations import AutomationError
        from connector.errors import Violation

        kind = "null" if elements is None else type(elements).__name__
        problem = f"$map takes a list, not {kind}"
        raise AutomationError("(automation)", [Violation("(references)", f"{pointer}/$map", problem)])
    template = value["to"]
    return [resolve(template, {**context, "item": element}, f"{pointer}/to") for element in elements]


def _walk(value: Any, pointer: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if is_operator(value):
        yield pointer, value
    if isinstance(value, Mapping):
        for key, member in value.items():
            yield from _walk(member, f"{pointer}/{_escape(str(key))}")
    elif isinstance(value, list):
        for i, member in enumerate(value):
            yield from _walk(member, f"{pointer}/{i}")


def operator_pointers(value: Any) -> list[str]:
    """Pointers of the outermost operators in `value`: each stands for a value of any type at deploy time."""
    found = [pointer for pointer, _ in _walk(value, "")]
    return [p for p in found if not any(p != q and p.startswith(q + "/") for q in found)]


def map_scopes(value: Any) -> list[str]:
    """Pointers of every `$map`'s `to`: inside them, ${item} is the element being mapped."""
    return [f"{pointer}/to" for pointer, op in _walk(value, "") if "$map" in op]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
