"""Load manifest.yaml and everything it points to, check it all, and hand out typed definitions.

Loading validates each data file against its meta-schema in `schemas/meta/`, checks every input schema is valid
JSON Schema, inlines every `$ref` (a dangling one is an error) and cross-checks the files: known products and
connections, unique action keys, and request templates that only name inputs the schema declares. Any mistake is
a ManifestError naming the file, at load time.

The checked result is a plain JSON "bundle". It is cached on disk, keyed by the data files' names, sizes and
modification times, so a new process starts without importing YAML or re-checking unchanged files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from connector import _schema, _template
from connector.errors import ManifestError

__all__ = ["Action", "ConnectionDef", "Manifest", "Product", "data_root", "load_manifest"]

BUNDLE_FORMAT = 1


class Product(NamedTuple):
    key: str
    label: str
    base_path: str
    envelope: str  # "crm" or "finance"
    organization: Mapping[str, str] | None


class Action(NamedTuple):
    key: str
    label: str
    description: str
    product: str
    connection: str
    inputs_file: str
    input_schema: Mapping[str, Any]  # standalone: every $ref inlined
    safety: str
    request: Mapping[str, Any]
    pagination: Mapping[str, Any] | None
    result: Mapping[str, Any]
    example_output: Mapping[str, Any]
    hook: str | None
    file: str
    roles: Mapping[str, str]  # input names by `x-role` (debug, fetch_all, timeout_ms, …): the runner's controls

    def inputs_with_role(self, role: str) -> str | None:
        return self.roles.get(role)


class ConnectionDef(NamedTuple):
    key: str
    label: str
    description: str
    input_schema: Mapping[str, Any]
    regions: Mapping[str, Any]
    environments: Mapping[str, str]
    oauth: Mapping[str, str]


class Manifest(NamedTuple):
    key: str
    label: str
    description: str
    version: str
    root: Path
    products: Mapping[str, Product]
    connections: Mapping[str, ConnectionDef]
    actions: Mapping[str, Action]

    def action(self, key: str) -> Action:
        try:
            return self.actions[key]
        except KeyError:
            from difflib import get_close_matches

            near = get_close_matches(key, list(self.actions), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else "; `zoho-connector actions` lists them"
            raise KeyError(f"unknown action {key!r}{hint}") from None


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
    manifest = reader.yaml("manifest.yaml")
    reader.check(manifest, "manifest", "manifest.yaml")

    connections: dict[str, Any] = {}
    for path in manifest["connections"]:
        conn = reader.yaml(path)
        reader.check(conn, "connection", path)
        if conn["key"] in connections:
            raise ManifestError(path, f"duplicate connection key {conn['key']!r}")
        regions = reader.yaml(conn["regions"])
        reader.check(regions, "regions", conn["regions"])
        connections[conn["key"]] = {
            **{k: conn[k] for k in ("key", "label", "description", "oauth")},
            "input_schema": reader.input_schema(conn["inputs"], path),
            "regions": regions["regions"],
            "environments": regions["environments"],
        }

    actions: dict[str, Any] = {}
    for path in manifest["actions"]:
        action = reader.yaml(path)
        reader.check(action, "action", path)
        key = action["key"]
        if key in actions:
            raise ManifestError(path, f"duplicate action key {key!r} (also in {actions[key]['file']})")
        if action["product"] not in manifest["products"]:
            raise ManifestError(path, f"unknown product {action['product']!r}; known: {sorted(manifest['products'])}")
        if action["connection"] not in connections:
            raise ManifestError(path, f"unknown connection {action['connection']!r}; known: {sorted(connections)}")
        schema = reader.input_schema(action["inputs"], path)
        _check_request(path, action, schema)
        actions[key] = {
            **action,
            "input_schema": schema,
            "inputs_file": action["inputs"],
            "file": path,
        }
    return {
        "format": BUNDLE_FORMAT,
        "manifest": {k: manifest[k] for k in ("key", "label", "description", "version", "products")},
        "connections": connections,
        "actions": actions,
    }


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
    loose = (always | method_inputs) - required - {n for n in method_inputs if "default" in schema["properties"][n]}
    if loose:
        raise ManifestError(path, f"path inputs {sorted(loose)} must be required (or sit inside [ … ])")
    if action.get("hook") is not None:
        from connector.hooks import HOOKS

        if action["hook"] not in HOOKS:
            raise ManifestError(path, f"unknown hook {action['hook']!r}; connector.hooks defines: {sorted(HOOKS)}")
    pagination = action.get("pagination")
    if pagination and "fetch_all" not in _roles(schema):
        raise ManifestError(path, "a paginated action needs an input with x-role: fetch_all")


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

    def check(self, value: Any, kind: str, rel: str) -> None:
        meta = self.json_file(self.root / "schemas" / "meta" / f"{kind}.schema.json")
        found = _schema.violations(meta, value)
        if found:
            problems = "; ".join(f"{v.pointer or '/'}: {v.message}" for v in found[:5])
            raise ManifestError(rel, f"does not match schemas/meta/{kind}.schema.json: {problems}")

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
    for folder in ("actions", "connections", "schemas"):
        for dirpath, _, names in os.walk(root / folder):
            for name in names:
                yield Path(dirpath) / name


def _fingerprint(root: Path) -> str:
    from connector import __version__

    digest = hashlib.sha256(f"{BUNDLE_FORMAT}:{__version__}:{root}".encode())
    for path in sorted(_data_files(root)):
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
    products = {
        key: Product(
            key=key,
            label=p["label"],
            base_path=p["base_path"],
            envelope=p["envelope"],
            organization=p.get("organization"),
        )
        for key, p in meta["products"].items()
    }
    connections = {
        key: ConnectionDef(
            key=key,
            label=c["label"],
            description=c["description"],
            input_schema=c["input_schema"],
            regions=c["regions"],
            environments=c["environments"],
            oauth=c["oauth"],
        )
        for key, c in bundle["connections"].items()
    }
    actions = {
        key: Action(
            key=key,
            label=a["label"],
            description=a["description"],
            product=a["product"],
            connection=a["connection"],
            inputs_file=a["inputs_file"],
            input_schema=a["input_schema"],
            safety=a["safety"],
            request=a["request"],
            pagination=a.get("pagination"),
            result=a.get("result", {}),
            example_output=a["example_output"],
            hook=a.get("hook"),
            file=a["file"],
            roles=_roles(a["input_schema"]),
        )
        for key, a in bundle["actions"].items()
    }
    return Manifest(
        key=meta["key"],
        label=meta["label"],
        description=meta["description"],
        version=meta["version"],
        root=root,
        products=products,
        connections=connections,
        actions=actions,
    )


@cache
def bundled_manifest() -> Manifest:
    """The manifest shipped with the package, loaded once per process."""
    return load_manifest()
