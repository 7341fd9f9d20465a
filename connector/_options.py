"""Dynamic inputs: the choices of an input (`options`) and an action's input schema expanded from the account's
real metadata (`describe`), both read from the `x-options` an input schema declares (connector.models.InputOptions).

    options("crmGetRecords", "fields", {"recordType": "Leads"})        → [{"value": "Email", "label": "Email"}, …]
    options("crmCreateRecord", "fieldValues/Lead_Status", {...})      → the picklist's values
    describe("crmCreateRecord", {"recordType": "Leads"})               → the schema, fieldValues as the real fields

Choices come from running the metadata action the declaration names, fed from the inputs it depends on. Answers are
cached per account (the connection's identity) and metadata request for `ttl` seconds on the Connector's clock;
`refresh=True` fetches again. Nothing here knows a product: the declarations and the field-schema strategies
(connector.strategies.FIELD_SCHEMAS) say what to call and how to read it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector._inputs import checked_inputs
from connector._jobs import dig
from connector.errors import BadResponseError, InputValidationError, Violation
from connector.manifest import Action, options_of
from connector.strategies import FIELD_SCHEMAS

if TYPE_CHECKING:
    from connector.runner import ConnectionLike, Connector

__all__ = ["DEFAULT_TTL", "MetadataCache", "describe", "options"]

DEFAULT_TTL = 600.0  # metadata changes when an admin edits the account: ten minutes is fresh enough for forms


class MetadataCache:
    """Metadata answers by (account, action, inputs), each kept `ttl` seconds; a bounded, thread-safe LRU.

    With a `directory` the answers are also kept there, one file per key (named by its digest: no token or account
    name in a file name, the directory and files private to the user), so that processes that each ask once (the
    command line: `zoho-connector options`, `describe`) share them for the TTL too; `refresh` replaces the file."""

    def __init__(
        self,
        clock: Callable[[], float],
        ttl: float = DEFAULT_TTL,
        limit: int = 512,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self._clock = clock
        self.ttl = ttl
        self._limit = limit
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._directory = Path(directory) if directory is not None else None

    def get(self, key: tuple[Any, ...], fetch: Callable[[], Any], *, refresh: bool = False) -> Any:
        now = self._clock()
        with self._lock:
            held = self._entries.get(key)
            if held is not None and not refresh and held[0] > now:
                self._entries.move_to_end(key)
                return held[1]
        stored = None if refresh else self._read(key, now)
        if stored is not None:
            self._keep(key, *stored)
            return stored[1]
        value = fetch()  # outside the lock: a slow call must not hold up other accounts
        expires = self._clock() + self.ttl
        self._keep(key, expires, value)
        self._write(key, expires, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _keep(self, key: tuple[Any, ...], expires: float, value: Any) -> None:
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._limit:
                self._entries.popitem(last=False)

    def _file(self, key: tuple[Any, ...]) -> Path | None:
        if self._directory is None:
            return None
        digest = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()
        return self._directory / f"{digest}.json"

    def _read(self, key: tuple[Any, ...], now: float) -> tuple[float, Any] | None:
        path = self._file(key)
        if path is None:
            return None
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
            expires, value = float(held["expires"]), held["value"]
        except (OSError, ValueError, TypeError, KeyError):
            return None  # none yet, or unreadable: fetched again and rewritten
        return (expires, value) if expires > now else None

    def _write(self, key: tuple[Any, ...], expires: float, value: Any) -> None:
        path = self._file(key)
        if path is None:
            return
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")  # created 0600
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"expires": expires, "value": value}, out, default=str)
            os.replace(partial, path)
            self._prune(path.parent)
        except OSError:
            pass  # a cache that cannot be written only costs the next process a metadata call

    def _prune(self, directory: Path) -> None:
        """Files past their TTL by the wall clock (the directory is only shared across processes in real time)."""
        stale = time.time() - self.ttl
        for old in directory.glob("*.json"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < stale:
                    old.unlink()


def _split(name: str) -> tuple[str, str | None]:
    """`fieldValues/Lead_Status` (or `fieldValues.Lead_Status`) → ("fieldValues", "Lead_Status")."""
    for separator in ("/", "."):
        if separator in name:
            head, _, key = name.partition(separator)
            return head, key
    return name, None


def _action(connector: Connector, key: str) -> Action:
    try:
        return connector.manifest.action(key)
    except KeyError as exc:
        raise InputValidationError(key, [Violation("(action)", "", str(exc.args[0]))]) from None


def _declared(action: Action, name: str) -> tuple[str, dict[str, Any]]:
    prop = action.input_schema["properties"].get(name)
    if prop is None:
        known = ", ".join(sorted(action.input_schema["properties"]))
        raise InputValidationError(
            action.key, [Violation(name, f"/{name}", f"unknown input; expected one of: {known}")]
        )
    found = options_of(prop)
    if found is None:
        with_options = ", ".join(sorted(n for n, p in action.input_schema["properties"].items() if "x-options" in p))
        raise InputValidationError(
            action.key, [Violation(name, f"/{name}", f"has no options; inputs with options: {with_options or 'none'}")]
        )
    return found


def _depends(declared: Mapping[str, Any]) -> list[str]:
    """This action's inputs the choices depend on: those fed to the metadata action and to its lookups."""
    names = list(declared.get("inputs", {}).values())
    for lookup in declared.get("lookups", {}).values():
        names += [*lookup.get("inputs", {}).values(), *lookup["match"].values()]
    return list(dict.fromkeys(names))


def _missing(declared: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[str]:
    return [ours for ours in _depends(declared) if inputs.get(ours) in (None, "")]


def _feed(declared: Mapping[str, Any], depends: Mapping[str, Any]) -> dict[str, Any]:
    feed: dict[str, Any] = {theirs: depends[o] for theirs, o in declared.get("inputs", {}).items()}
    feed.update(declared.get("constants", {}))
    return feed


def _listing(
    connector: Connector,
    cache: MetadataCache,
    source_key: str,
    feed: dict[str, Any],
    path: str,
    connection: ConnectionLike,
    refresh: bool,
) -> list[Mapping[str, Any]]:
    """The entries at `path` of a metadata action's answer to `feed`, fetched (or recalled) for this account."""
    source = connector.manifest.action(source_key)
    fetch_all = source.inputs_with_role("fetch_all")
    if fetch_all:
        feed = {**feed, fetch_all: True}
    definition = connector.manifest.connections[source.connection]
    account = connector.resolved(definition, connection).cache_key
    key = (account, source.key, json.dumps(feed, sort_keys=True, default=str))
    answer = cache.get(key, lambda: connector.run(source.key, feed, connection=connection)["data"], refresh=refresh)
    found = dig(answer, path)
    if found is None:
        found = []  # an empty answer (204) holds no entries
    if not isinstance(found, list):
        raise BadResponseError(f"{source.key}: the answer's {path!r} is not a list")
    return [e for e in found if isinstance(e, Mapping)]


def _looked_up(
    connector: Connector,
    cache: MetadataCache,
    action: Action,
    lookup: Mapping[str, Any],
    depends: Mapping[str, Any],
    connection: ConnectionLike,
    refresh: bool,
) -> Any:
    """The value a lookup feeds the metadata action: a member of the entry matching this action's inputs."""
    entries = _listing(connector, cache, lookup["action"], _feed(lookup, depends), lookup["list"], connection, refresh)
    match: Mapping[str, str] = lookup["match"]
    chosen = next((e for e in entries if all(dig(e, m) == depends[o] for m, o in match.items())), None)
    member, ours = next(iter(match.items()))  # the input an error names
    if chosen is None:
        known = ", ".join(sorted({str(dig(e, member)) for e in entries if dig(e, member) is not None}))
        problem = f"{depends[ours]!r} is not one of: {known or 'none'}"
        raise InputValidationError(action.key, [Violation(ours, f"/{ours}", problem)])
    value = dig(chosen, lookup["value"])
    if value in (None, ""):
        problem = f"{depends[ours]!r} has no {lookup['value']} to list options from"
        raise InputValidationError(action.key, [Violation(ours, f"/{ours}", problem)])
    return value


def _entries(
    connector: Connector,
    cache: MetadataCache,
    action: Action,
    name: str,
    declared: Mapping[str, Any],
    inputs: Mapping[str, Any],
    connection: ConnectionLike,
    refresh: bool,
) -> list[Mapping[str, Any]]:
    """The metadata entries an input's choices come from, fetched (or recalled) for this account."""
    missing = _missing(declared, inputs)
    if missing:
        violations = [Violation(m, f"/{m}", f"is required to list the options of {name}") for m in missing]
        raise InputValidationError(action.key, violations)
    ours = sorted(_depends(declared))
    properties = action.input_schema["properties"]
    depends = checked_inputs(
        action.key, {"type": "object", "properties": {n: properties[n] for n in ours}}, {n: inputs[n] for n in ours}
    )
    feed = _feed(declared, depends)
    for theirs, lookup in declared.get("lookups", {}).items():
        feed[theirs] = _looked_up(connector, cache, action, lookup, depends, connection, refresh)
    found = _listing(connector, cache, declared["action"], feed, declared["list"], connection, refresh)
    where = declared.get("where", {})
    return [e for e in found if all(dig(e, k) == v for k, v in where.items())]


def _suggested(prop: Any, inputs: Mapping[str, Any]) -> list[str] | None:
    """The fixed values an input without `x-options` offers: those for the input it depends on when that is given
    (`x-suggestions-by`, e.g. the kinds under a parent kind), else `x-suggestions`; None when it offers none."""
    if not isinstance(prop, Mapping) or "x-options" in prop:
        return None
    by = prop.get("x-suggestions-by")
    if by is not None and inputs.get(by["input"]) not in (None, ""):
        return list(by["values"].get(inputs[by["input"]], []))
    suggestions = prop.get("x-suggestions")
    return list(suggestions) if suggestions is not None else None


def _choice(entry: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    value = dig(entry, spec["value"])
    label = dig(entry, spec["label"])
    return {"value": value, "label": str(label if label not in (None, "") else value)}


def options(
    connector: Connector,
    cache: MetadataCache,
    action_key: str,
    input_name: str,
    inputs: Mapping[str, Any] | None,
    connection: ConnectionLike,
    *,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    action = _action(connector, action_key)
    name, key = _split(input_name)
    offered = _suggested(action.input_schema["properties"].get(name), inputs or {})
    if offered is not None and key is None:
        return [{"value": value, "label": value} for value in offered]
    applies, declared = _declared(action, name)
    entries = _entries(connector, cache, action, name, declared, inputs or {}, connection, refresh)
    if key is None:
        return [_choice(e, declared) for e in entries if dig(e, declared["value"]) is not None]
    entry_spec = declared.get("entry")
    if applies not in ("keys", "item_keys") or entry_spec is None:
        raise InputValidationError(
            action.key, [Violation(name, f"/{name}", f"{name} has no options per key; ask for {name} itself")]
        )
    chosen = next((e for e in entries if dig(e, declared["value"]) == key), None)
    if chosen is None:
        raise InputValidationError(
            action.key, [Violation(name, f"/{name}/{key}", f"{key!r} is not one of the choices")]
        )
    listed = dig(chosen, entry_spec["list"]) or []
    return [_choice(e, entry_spec) for e in listed if isinstance(e, Mapping)]


def describe(
    connector: Connector,
    cache: MetadataCache,
    action_key: str,
    inputs: Mapping[str, Any] | None,
    connection: ConnectionLike,
    *,
    refresh: bool = False,
) -> dict[str, Any]:
    """The action's input schema, each input with a field-schema declaration expanded into the real fields
    (types, lengths, required, picklists) and each other input with options given its choices (`x-choices`).
    Inputs whose choices depend on inputs not given are left as declared."""
    action = _action(connector, action_key)
    given = inputs or {}
    schema: dict[str, Any] = copy.deepcopy(action.input_schema)
    for name, prop in schema["properties"].items():
        found = options_of(prop)
        if found is None or _missing(found[1], given):
            continue
        applies, declared = found
        entries = _entries(connector, cache, action, name, declared, given, connection, refresh)
        if "schema" not in declared:
            prop["x-choices"] = [_choice(e, declared) for e in entries if dig(e, declared["value"]) is not None]
            continue
        fields = _fields_schema(entries, declared)
        if applies == "keys":
            keep = {k: prop[k] for k in ("title", "description", "x-options", "x-group") if k in prop}
            schema["properties"][name] = {**keep, **fields}
        else:
            prop["items"] = {**prop.get("items", {}), **fields}
    return schema


def _fields_schema(entries: list[Mapping[str, Any]], declared: Mapping[str, Any]) -> dict[str, Any]:
    rule = FIELD_SCHEMAS[declared["schema"]]
    properties: dict[str, Any] = {}
    required: list[str] = []
    for entry in entries:
        name = dig(entry, declared["value"])
        if not isinstance(name, str):
            continue
        field = rule(entry)
        properties[name] = field.schema
        if field.mandatory and declared.get("required"):
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out
