"""Load manifest.yaml and everything it points to, check it all, and hand out typed definitions.

Loading validates each data file against its model in `connector.models` (the meta-schemas in `schemas/meta/` are
generated from the same models), checks every input schema is valid JSON Schema, inlines every `$ref` (a dangling
one is an error) and cross-checks the files: known products, connections and strategies, unique action keys, input
roles, and request templates that only name inputs the schema declares. Any mistake is a ManifestError naming the
file, at load time.

The checked result is a plain JSON "bundle". It is cached on disk, keyed by the data files' names, sizes and
modification times and by the checking code itself, so a new process starts without importing YAML or pydantic or
re-checking unchanged files, and a changed checker never trusts a bundle an older one built.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from connector import _schema, _template, models, strategies
from connector.errors import ManifestError
from connector.models import Action, ConnectionDef, Manifest, Product, Trigger

__all__ = ["Action", "ConnectionDef", "Manifest", "Product", "Trigger", "data_root", "load_manifest", "options_of"]

BUNDLE_FORMAT = 3


def _roles(schema: Mapping[str, Any]) -> dict[str, str]:
    return {
        prop["x-role"]: name
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, dict) and "x-role" in prop
    }


def data_root() -> Path:
    """Where manifest.yaml lives: inside the installed wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_data"
    return packaged if (packaged / "manifest.yaml").is_file() else here.parent


def load_manifest(root: Path | None = None, *, use_cache: bool = True) -> Manifest:
    """Load and check the manifest under `root` (default: the bundled one)."""
    root = (root or data_root()).resolve()
    bundle = _cached_bundle(root) if use_cache else None
    if bundle is None:
        bundle = build_bundle(root)
        if use_cache:
            _store_bundle(root, bundle)
    return _from_bundle(root, bundle)


# --- the bundle: checked data as plain JSON ------------------------------------------------------------------


def build_bundle(root: Path) -> dict[str, Any]:
    """Read and check every data file under `root`; raise ManifestError on the first broken one."""
    reader = _Reader(root)
    manifest = reader.model("manifest.yaml", "manifest")  # strategy names: enums of the registered ones

    connections: dict[str, Any] = {}
    for path in manifest["connections"]:
        conn = reader.model(path, "connection")
        if conn["key"] in connections:
            raise ManifestError(path, f"duplicate connection key {conn['key']!r}")
        regions = reader.model(conn["regions"], "regions")
        input_schema = reader.input_schema(conn["inputs"], path)
        _check_editions(path, conn["editions"], input_schema)
        connections[conn["key"]] = {
            **{k: conn[k] for k in ("key", "label", "description", "oauth", "editions")},
            "input_schema": input_schema,
            "regions": regions["regions"],
            "environments": regions["environments"],
        }

    actions: dict[str, Any] = {}
    for path in manifest["actions"]:
        action = reader.model(path, "action")
        key = action["key"]
        if key in actions:
            raise ManifestError(path, f"duplicate action key {key!r} (also in {actions[key]['file']})")
        if action["product"] not in manifest["products"]:
            raise ManifestError(path, f"unknown product {action['product']!r}; known: {sorted(manifest['products'])}")
        if action["connection"] not in connections:
            raise ManifestError(path, f"unknown connection {action['connection']!r}; known: {sorted(connections)}")
        schema = reader.input_schema(action["inputs"], path)
        _check_request(path, action, schema)
        actions[key] = {**action, "input_schema": schema, "file": path, "roles": _checked_roles(path, action, schema)}
    for action in actions.values():
        _check_options(action, actions)

    triggers: dict[str, Any] = {}
    for path in manifest.get("triggers", []):
        trigger = reader.model(path, "trigger")
        key = trigger["key"]
        if key in triggers or key in actions:
            raise ManifestError(path, f"duplicate key {key!r}: triggers and actions share one namespace")
        if trigger["product"] not in manifest["products"]:
            raise ManifestError(path, f"unknown product {trigger['product']!r}; known: {sorted(manifest['products'])}")
        if trigger["connection"] not in connections:
            raise ManifestError(path, f"unknown connection {trigger['connection']!r}; known: {sorted(connections)}")
        schema = reader.input_schema(trigger["inputs"], path)
        _check_trigger(path, trigger, schema, actions)
        triggers[key] = {**trigger, "input_schema": schema, "file": path}
        _check_options(triggers[key], actions)
    return {
        "format": BUNDLE_FORMAT,
        "manifest": {k: manifest[k] for k in ("key", "label", "description", "version", "products")},
        "connections": connections,
        "actions": actions,
        "triggers": triggers,
        "automations": _checked_automations(reader, manifest.get("automations", []), actions, triggers),
    }


def _checked_automations(
    reader: _Reader, paths: list[str], actions: Mapping[str, Any], triggers: Mapping[str, Any]
) -> dict[str, str]:
    """Shipped automation files must be sound (connector.automations): a broken one fails here, at load time."""
    from connector import automations

    schemas = {key: action["input_schema"] for key, action in actions.items()}
    kinds = {key: {"kind": t["kind"], "input_schema": t["input_schema"]} for key, t in triggers.items()}
    names: dict[str, str] = {}
    for path in paths:
        try:
            data = automations.parse(reader._text(path), path)
        except automations.AutomationError as exc:
            raise ManifestError(path, exc.problems[0].message) from None
        problems = automations.check_automation(data, actions=schemas, triggers=kinds)
        if problems:
            raise ManifestError(path, "invalid automation: " + "; ".join(map(str, problems)))
        name = data["name"]
        if name in names:
            raise ManifestError(path, f"duplicate automation name {name!r} (also in {names[name]})")
        names[name] = path
    return names


def _check_trigger(
    path: str, trigger: Mapping[str, Any], schema: Mapping[str, Any], actions: Mapping[str, Any]
) -> None:
    """A trigger's kind has its section; the actions it uses exist, on its connection, and do what it needs; a poll's
    input template names only the trigger's inputs and fills only the listing action's."""
    kind = trigger["kind"]
    other = "webhook" if kind == "poll" else "poll"
    if not trigger.get(kind) or trigger.get(other):
        raise ManifestError(path, f"a {kind} trigger has a `{kind}:` section and no `{other}:` section")

    def used(key: str, what: str) -> Mapping[str, Any]:
        action: Mapping[str, Any] | None = actions.get(key)
        if action is None:
            raise ManifestError(path, f"{what} action {key!r} is not in the manifest")
        if action["connection"] != trigger["connection"]:
            raise ManifestError(path, f"{what} action {key!r} uses connection {action['connection']!r}")
        return action

    if kind == "webhook":
        webhook = trigger["webhook"]
        for role in ("subscribe", "renew", "unsubscribe", "fetch"):
            if role in webhook:
                used(webhook[role], role)
        if webhook["renew_before_seconds"] >= webhook["lifetime_seconds"]:
            raise ManifestError(path, "webhook renew_before_seconds must be shorter than lifetime_seconds")
        return
    poll = trigger["poll"]
    lister = used(poll["action"], "poll")
    if lister["safety"] != "read" or not lister.get("pagination"):
        raise ManifestError(path, f"poll action {poll['action']!r} must be a paginated read action")
    if not isinstance(poll["inputs"], dict):
        raise ManifestError(path, "poll inputs must be an object: the listing action's inputs by name")
    theirs = set(lister["input_schema"]["properties"])
    try:
        named = _template.expression_inputs(poll["inputs"])
    except _template.TemplateError as exc:
        raise ManifestError(path, f"poll inputs: {exc}") from None
    unknown_ours = sorted(named - set(schema.get("properties", {})))
    if unknown_ours:
        raise ManifestError(path, f"poll inputs name inputs the trigger's schema does not declare: {unknown_ours}")
    if ("cursor" in poll) == ("list" in poll):
        raise ManifestError(path, "a poll has a `cursor:` (a list sorted or filtered by time) or a `list:`, not both")
    if "list" in poll:
        _check_list_poll(path, poll, lister, theirs, schema)
        return
    cursor = poll["cursor"]
    since = cursor.get("since_input")
    filled = set(poll["inputs"]) | ({since} if since else set())
    unknown_theirs = sorted(filled - theirs)
    if unknown_theirs:
        raise ManifestError(path, f"poll action {poll['action']!r} has no inputs {unknown_theirs}")
    if cursor["order"] == "ascending" and not since:
        raise ManifestError(
            path, "an ascending poll cursor needs since_input (it restarts every request from the cursor)"
        )
    if "page" not in lister["roles"]:
        raise ManifestError(path, f"poll action {poll['action']!r} has no input with x-role: page")
    owned = sorted(set(poll["inputs"]) & {since, lister["roles"].get("page"), lister["roles"].get("fetch_all")})
    if owned:
        raise ManifestError(path, f"poll inputs fill {owned}, which the poll itself sets (cursor and paging)")
    fields_input = cursor.get("fields_input")
    if fields_input is not None and lister["input_schema"]["properties"].get(fields_input, {}).get("type") != "array":
        raise ManifestError(path, f"cursor fields_input {fields_input!r} is not a list input of {poll['action']!r}")
    _check_time_format(path, cursor.get("format", models.DEFAULT_TIME_FORMAT))
    id_input = cursor.get("id_input")
    if id_input is not None and schema.get("properties", {}).get(id_input, {}).get("type") != "string":
        raise ManifestError(path, f"cursor id_input {id_input!r} is not a string input of the trigger")
    start = poll.get("start_input")
    if start is not None and schema.get("properties", {}).get(start, {}).get("type") != "string":
        raise ManifestError(path, f"poll start_input {start!r} is not a string input of the trigger")


def _check_list_poll(
    path: str, poll: Mapping[str, Any], lister: Mapping[str, Any], theirs: set[str], schema: Mapping[str, Any]
) -> None:
    """A list poll walks pages itself: the listing action has page and page-size inputs the poll sets, and the
    settings that may come from the trigger's inputs name inputs it declares."""
    roles = lister["roles"]
    missing = [role for role in ("page", "page_size") if role not in roles]
    if missing:
        raise ManifestError(path, f"poll action {poll['action']!r} has no input with x-role: {', '.join(missing)}")
    unknown = sorted(set(poll["inputs"]) - theirs)
    if unknown:
        raise ManifestError(path, f"poll action {poll['action']!r} has no inputs {unknown}")
    owned = sorted(set(poll["inputs"]) & {roles["page"], roles["page_size"], roles.get("fetch_all")})
    if owned:
        raise ManifestError(path, f"poll inputs fill {owned}, which the poll itself sets (paging)")
    spec = poll["list"]
    try:
        named = _template.expression_inputs(spec)
    except _template.TemplateError as exc:
        raise ManifestError(path, f"poll list: {exc}") from None
    unknown_ours = sorted(named - set(schema.get("properties", {})))
    if unknown_ours:
        raise ManifestError(path, f"poll list names inputs the trigger's schema does not declare: {unknown_ours}")
    watch = spec.get("watch", {})
    if ("field" in watch) != ("values" in watch):
        raise ManifestError(path, "poll list watch has both `field` and `values` (some records), or neither (all)")


def _check_time_format(path: str, pattern: str) -> None:
    """A cursor's timestamp format must read back as the instant it wrote (the poll compares parsed instants)."""
    from datetime import UTC, datetime

    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        same = datetime.fromisoformat(moment.strftime(pattern)) == moment
    except ValueError:
        same = False
    if not same:
        raise ManifestError(path, f"cursor format {pattern!r} does not write an ISO 8601 time with its offset")


def _check_editions(path: str, editions: Mapping[str, int], schema: Mapping[str, Any]) -> None:
    """The connection's `edition` input offers exactly the plans the connection file gives a concurrency."""
    edition = schema["properties"].get("edition")
    offered = edition.get("enum") if isinstance(edition, dict) else None
    if offered is None or set(offered) != set(editions) or edition.get("default") not in editions:
        raise ManifestError(
            path,
            f"the `edition` input must offer exactly the editions listed here ({', '.join(editions)}), with "
            "one of them as its default",
        )


# The members of the data files that name a strategy, and the registry each names it in.
_STRATEGY_MEMBERS = {
    "envelope": "envelope",
    "host": "host",
    "convention": "organization",
    "pager": "pager",
    "channel": "channel",
    "schema": "field_schema",
}


def _model_problems(exc: Any) -> str:
    """pydantic's findings, a strategy name that is not registered said as such (a typo fails at load time, not
    mid-automation)."""
    known = strategies.registry()
    problems = []
    for e in exc.errors(include_url=False)[:5]:
        where = f"/{'/'.join(map(str, e['loc']))}"
        kind = _STRATEGY_MEMBERS.get(str(e["loc"][-1])) if e["loc"] else None
        if e["type"] == "literal_error" and kind is not None:
            problems.append(f"{where}: unknown {kind} {e['input']!r}; registered: {', '.join(known[kind])}")
        else:
            problems.append(f"{where}: {e['msg']}")
    return "; ".join(problems)


def _checked_roles(path: str, action: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, str]:
    """Input roles are an enumerated list: an unknown role, a role on two inputs, or a role on an input of the
    wrong type is a load error."""
    roles: dict[str, str] = {}
    for name, prop in schema["properties"].items():
        role = prop.get("x-role")
        if role is None:
            continue
        if role not in models.ROLE_TYPES:
            raise ManifestError(path, f"input {name!r} has unknown x-role {role!r}; known: {sorted(models.ROLE_TYPES)}")
        if role in roles:
            raise ManifestError(path, f"inputs {roles[role]!r} and {name!r} both have x-role {role!r}")
        expected = models.ROLE_TYPES[role]
        if prop.get("type") != expected:
            raise ManifestError(path, f"input {name!r} has x-role {role!r} and must be of type {expected}")
        roles[role] = name
    for name, prop in schema["properties"].items():
        by = prop.get("x-suggestions-by")
        if by is not None and by.get("input") not in schema["properties"]:
            raise ManifestError(
                path, f"input {name!r} x-suggestions-by names no input of this action: {by.get('input')!r}"
            )
    if action.get("pagination") and "fetch_all" not in roles:
        raise ManifestError(path, "a paginated action needs an input with x-role: fetch_all")
    return roles


def _check_request(path: str, action: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Every input a request names must exist in the schema; path inputs outside [ … ] must be required."""
    declared = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    request = action["request"]
    try:
        always, optional = _template.path_inputs(request["path"])
        method_inputs, _ = _template.path_inputs(request["method"])
        named = always | optional | method_inputs
        for part in ("query", "headers", "body", "form", "files"):
            if part in request:
                named |= _template.expression_inputs(request[part])
    except _template.TemplateError as exc:
        raise ManifestError(path, f"request: {exc}") from None
    unknown = named - declared
    if unknown:
        raise ManifestError(path, f"request names inputs the schema does not declare: {sorted(unknown)}")
    if "body" in request and ("form" in request or "files" in request) and "json_form_field" not in request:
        raise ManifestError(
            path,
            "request: a body sent with a form or files needs json_form_field (the form field that carries the JSON)",
        )
    loose = (always | method_inputs) - required - {n for n in method_inputs if "default" in schema["properties"][n]}
    if loose:
        raise ManifestError(path, f"path inputs {sorted(loose)} must be required (or sit inside [ … ])")
    _check_hook(path, action.get("hook"))
    _check_output(path, action)
    batch = action.get("batch")
    if batch and (batch["input"] not in required or schema["properties"][batch["input"]].get("type") != "array"):
        raise ManifestError(path, f"batch input {batch['input']!r} must be a required input of type array")
    job = action.get("job")
    if job:
        if action.get("pagination"):
            raise ManifestError(path, "an action is either paginated or a job, not both")
        cursor = job.get("cursor_input")
        if cursor is not None and cursor not in declared:
            raise ManifestError(path, f"job cursor_input {cursor!r} is not an input of the schema")


def _check_output(path: str, action: Mapping[str, Any]) -> None:
    """A declared output names only the answer, and only of one call: pages, batches and jobs have their own shape."""
    result = action.get("result") or {}
    if "output" not in result:
        return
    from connector import _output

    kinds = [kind for kind in ("pagination", "batch", "job") if action.get(kind)]
    if kinds:
        raise ManifestError(path, f"result.output cannot be used with {kinds[0]}")
    found = _output.problems(result["output"])
    if found:
        raise ManifestError(path, "; ".join(found))


def options_of(prop: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """An input's `x-options` and what its choices are (value, items, keys or item_keys), or None."""
    declared = prop.get("x-options")
    if not isinstance(declared, dict):
        return None
    applies = declared.get("applies")
    if applies is None:
        kind = prop.get("type")
        if kind == "array":
            applies = "item_keys" if prop.get("items", {}).get("type") == "object" else "items"
        elif kind == "object" or prop.get("x-collection") == "keyvaluelist":
            applies = "keys"
        else:
            applies = "value"
    return applies, declared


def _check_options(action: Mapping[str, Any], actions: Mapping[str, Any]) -> None:
    """`x-options` is part of the data: its shape (models.InputOptions), the metadata action it names (a read
    action), the inputs it feeds that action (declared on both sides, covering what that action requires) and its
    schema strategy are checked here, at load time."""
    from pydantic import ValidationError

    path = action["inputs"]  # the schema file that declares x-options
    properties = action["input_schema"]["properties"]
    for name, prop in properties.items():
        if "x-options" not in prop:
            continue
        where = f"input {name!r} x-options"
        try:
            models.validator("options").validate_python(prop["x-options"])
        except ValidationError as exc:
            problems = _model_problems(exc)
            raise ManifestError(path, f"{where} does not match schemas/meta/options.schema.json: {problems}") from None
        found = options_of(prop)
        assert found is not None
        applies, declared = found
        lookups = declared.get("lookups", {})
        _check_source(path, where, declared, set(lookups), properties, actions)
        for theirs, lookup in lookups.items():
            _check_source(path, f"{where} lookup of {theirs!r}", lookup, set(), properties, actions)
            unknown_ours = sorted(set(lookup["match"].values()) - set(properties))
            if unknown_ours:
                raise ManifestError(path, f"{where} lookup of {theirs!r} matches undeclared inputs: {unknown_ours}")
        if ("entry" in declared or "schema" in declared) and applies not in ("keys", "item_keys"):
            raise ManifestError(path, f"{where}: entry and schema apply to keys or item_keys, not {applies}")
        if applies in ("items", "item_keys") and prop.get("type") != "array":
            raise ManifestError(path, f"{where} applies to {applies} but the input is not an array")


def _check_source(
    path: str,
    where: str,
    declared: Mapping[str, Any],
    looked_up: set[str],
    properties: Mapping[str, Any],
    actions: Mapping[str, Any],
) -> None:
    """The metadata action an `x-options` (or one of its lookups) names: a read action, fed only inputs it has,
    from inputs this action declares, with every input it requires."""
    source = actions.get(declared["action"])
    if source is None:
        raise ManifestError(path, f"{where} names unknown action {declared['action']!r}")
    if source["safety"] != "read":
        raise ManifestError(path, f"{where} names {declared['action']!r}, which is not a read action")
    theirs = source["input_schema"]["properties"]
    fed = {*declared.get("inputs", {}), *declared.get("constants", {}), *looked_up}
    unknown_theirs = sorted(fed - set(theirs))
    if unknown_theirs:
        raise ManifestError(path, f"{where}: {declared['action']} has no inputs {unknown_theirs}")
    unknown_ours = sorted(set(declared.get("inputs", {}).values()) - set(properties))
    if unknown_ours:
        raise ManifestError(path, f"{where} depends on inputs this action does not declare: {unknown_ours}")
    missing = sorted(set(source["input_schema"].get("required", [])) - fed)
    if missing:
        raise ManifestError(path, f"{where} does not feed {declared['action']}'s required inputs {missing}")


def _check_hook(path: str, hook: str | None) -> None:
    if hook is not None:
        from connector.hooks import HOOKS

        if hook not in HOOKS:
            raise ManifestError(path, f"unknown hook {hook!r}; connector.hooks defines: {sorted(HOOKS)}")


class _Reader:
    """Reads data files relative to the manifest, turning every failure into a ManifestError naming the file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._json: dict[Path, Any] = {}

    def yaml(self, rel: str) -> Any:
        import yaml  # only when the bundle is (re)built

        text = self._text(rel)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader (C or Python)
        except yaml.YAMLError as exc:
            raise ManifestError(rel, f"not valid YAML: {exc}") from None

    def json_file(self, path: Path) -> Any:
        if path not in self._json:
            rel = self._rel(path)
            try:
                self._json[path] = json.loads(self._text(rel))
            except json.JSONDecodeError as exc:
                raise ManifestError(rel, f"not valid JSON: {exc}") from None
        return self._json[path]

    def model(self, rel: str, kind: str) -> dict[str, Any]:
        """A YAML data file checked against its model in connector.models, as plain data."""
        import dataclasses

        from pydantic import ValidationError

        try:
            checked = models.validator(kind).validate_python(self.yaml(rel))
        except ValidationError as exc:
            problem = f"does not match the {kind} model (schemas/meta/{kind}.schema.json): {_model_problems(exc)}"
            raise ManifestError(rel, problem) from None
        return dataclasses.asdict(checked)

    def input_schema(self, rel: str, used_by: str) -> dict[str, Any]:
        path = self.root / rel
        if not path.is_file():
            raise ManifestError(used_by, f"schema file {rel} does not exist")
        raw = self.json_file(path)
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            inlined = _schema.dereference(raw, path.resolve(), lambda p: self.json_file(p))
            Draft202012Validator.check_schema(inlined)
        except _schema.DanglingRef as exc:
            raise ManifestError(rel, str(exc)) from None
        except SchemaError as exc:
            where = "/" + "/".join(map(str, exc.absolute_path))
            raise ManifestError(rel, f"not a valid JSON Schema at {where}: {exc.message}") from None
        if (
            not isinstance(inlined, dict)
            or inlined.get("type") != "object"
            or not isinstance(inlined.get("properties"), dict)
        ):
            raise ManifestError(rel, "an input schema must be an object schema with properties")
        schema: dict[str, Any] = inlined
        for name, prop in schema["properties"].items():
            if not isinstance(prop, dict) or not prop.get("title") or not prop.get("description"):
                raise ManifestError(rel, f"input {name!r} needs a title and a description")
        return schema

    def _text(self, rel: str) -> str:
        path = self.root / rel
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError(rel, "file does not exist") from None

    def _rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)


# --- the on-disk cache -----------------------------------------------------------------------------------------


def _data_files(root: Path) -> Iterator[Path]:
    yield root / "manifest.yaml"
    for folder in ("actions", "triggers", "automations", "connections", "schemas"):
        for dirpath, _, names in os.walk(root / folder):
            for name in names:
                yield Path(dirpath) / name


def _checker_files() -> list[Path]:
    """The code that checks and shapes a bundle: an edited checker must not trust an older checker's bundle.
    Every module a bundle build imports (test_manifest checks none is forgotten), strategies included."""
    here = Path(__file__).resolve().parent
    return [
        here / "manifest.py",
        here / "models.py",
        here / "_template.py",
        here / "_schema.py",
        here / "_fastschema.py",
        here / "_output.py",
        here / "_reshape.py",
        here / "automations.py",
        here / "_inputs.py",
        here / "files.py",
        *sorted((here / "strategies").glob("*.py")),
        data_root() / "schemas" / "automation.json",
    ]


def _fingerprint(root: Path) -> str:
    from connector import __version__

    digest = hashlib.sha256(f"{BUNDLE_FORMAT}:{__version__}:{root}:{strategies.registry()}".encode())
    for path in sorted([*_data_files(root), *_checker_files()]):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _cache_dir() -> Path:
    configured = os.environ.get("ZOHO_CONNECTOR_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zoho-connector"


def _cache_file(root: Path) -> Path:
    return _cache_dir() / f"bundle-{_fingerprint(root)}.json"


def _cached_bundle(root: Path) -> dict[str, Any] | None:
    try:
        bundle: dict[str, Any] = json.loads(_cache_file(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return bundle if bundle.get("format") == BUNDLE_FORMAT else None


def _store_bundle(root: Path, bundle: dict[str, Any]) -> None:
    """Best effort: a read-only home just means every process checks the files itself."""
    import tempfile

    target = _cache_file(root)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".bundle-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(bundle, out)
        os.replace(tmp, target)
    except OSError:
        return


# --- typed view ------------------------------------------------------------------------------------------------


def _from_bundle(root: Path, bundle: Mapping[str, Any]) -> Manifest:
    meta = bundle["manifest"]
    actions = {key: Action(**a) for key, a in bundle["actions"].items()}
    for action in actions.values():  # hooks are Python: registered (or not) in this process, whatever the cache says
        _check_hook(action.file, action.hook)
    return Manifest(
        key=meta["key"],
        label=meta["label"],
        description=meta["description"],
        version=meta["version"],
        root=root,
        products={key: Product(key=key, **p) for key, p in meta["products"].items()},
        connections={key: ConnectionDef(**c) for key, c in bundle["connections"].items()},
        actions=actions,
        triggers={key: Trigger(**t) for key, t in bundle.get("triggers", {}).items()},
        automations=dict(bundle.get("automations", {})),
    )


@cache
def bundled_manifest() -> Manifest:
    """The manifest shipped with the package, loaded once per process."""
    return load_manifest()
