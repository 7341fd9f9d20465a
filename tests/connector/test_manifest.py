"""A broken manifest fails at load time with a message naming the file and the problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.errors import ManifestError
from connector.manifest import Action, Trigger, load_manifest


def edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_the_bundled_manifest_loads_every_listed_action(tree: Path) -> None:
    import yaml

    listed = yaml.safe_load((tree / "manifest.yaml").read_text())
    manifest = load_manifest(tree, use_cache=False)
    assert manifest.key == "zoho"
    assert sorted(a.file for a in manifest.actions.values()) == sorted(listed["actions"])
    assert sorted(t.file for t in manifest.triggers.values()) == sorted(listed["triggers"])


def _poll_section(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    import yaml

    data = yaml.safe_load(path.read_text())
    change(data["poll"])
    path.write_text(yaml.safe_dump(data))


UPDATED = "triggers/crm/updated-records.yaml"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: p["inputs"].update(modifiedSince="x"), "poll inputs fill ['modifiedSince'], which the poll itself"),
        (lambda p: p["inputs"].update(page=2), "poll inputs fill ['page']"),
        (lambda p: p["cursor"].update(fields_input="sort_by"), "cursor fields_input 'sort_by' is not a list input"),
        (lambda p: p["cursor"].update(format="%Y-%m-%d %H:%M:%S"), "does not write an ISO 8601 time with its offset"),
        (lambda p: p.update(start_input="recordType2"), "poll start_input 'recordType2' is not a string input"),
        (lambda p: p["cursor"].pop("since_input"), "an ascending poll cursor needs since_input"),
        (lambda p: p.update(action="crmGetRecord"), "must be a paginated read action"),
        (lambda p: p["inputs"].update(nope={"$input": "recordType"}), "has no inputs ['nope']"),
    ],
    ids=["since-filled", "page-filled", "fields-not-list", "format", "start-input", "no-since", "lister", "unknown"],
)
def test_a_broken_poll_trigger_names_its_file(
    tree: Path, change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    _poll_section(tree / UPDATED, change)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tree, use_cache=False)
    assert caught.value.file == UPDATED
    assert problem in caught.value.problem


def test_the_cache_notices_a_changed_trigger(tree: Path) -> None:
    assert load_manifest(tree).triggers["crmUpdatedRecords"].label == "CRM - Updated Records"
    edit(tree / UPDATED, lambda s: s.replace("label: CRM - Updated Records", "label: CRM - Changed Records"))
    assert load_manifest(tree).triggers["crmUpdatedRecords"].label == "CRM - Changed Records"


@pytest.mark.parametrize(
    ("breakage", "file", "problem"),
    [
        (
            lambda t: (t / "schemas/actions/crm/get-record.json").unlink(),
            "actions/crm/get-record.yaml",
            "schema file schemas/actions/crm/get-record.json does not exist",
        ),
        (
            lambda t: edit_json(
                t / "schemas/actions/crm/run-query.json", lambda d: d["properties"]["query"].update({"x-role": "magic"})
            ),
            "actions/crm/run-query.yaml",
            "input 'query' has unknown x-role 'magic'",
        ),
        (
            lambda t: edit_json(
                t / "schemas/actions/crm/get-records.json",
                lambda d: d["properties"]["sort_by"].update({"x-role": "page_cursor", "type": "string"}),
            ),
            "actions/crm/get-records.yaml",
            "both have x-role 'page_cursor'",
        ),
        (
            lambda t: edit_json(
                t / "schemas/actions/crm/run-query.json",
                lambda d: d["properties"]["query"].update({"x-role": "fetch_all"}),
            ),
            "actions/crm/run-query.yaml",
            "input 'query' has x-role 'fetch_all' and must be of type boolean",
        ),
        (
            lambda t: edit_json(
                t / "schemas/actions/crm/run-query.json",
                lambda d: d["properties"]["query"].update({"x-suggestions-by": {"input": "parent", "values": {}}}),
            ),
            "actions/crm/run-query.yaml",
            "input 'query' x-suggestions-by names no input of this action: 'parent'",
        ),
        (
            lambda t: edit(t / "actions/crm/get-records.yaml", lambda s: s.replace("pager: crm", "pager: cursor")),
            "actions/crm/get-records.yaml",
            "unknown pager 'cursor'; registered: coql, crm, finance, header",
        ),
        (
            lambda t: edit(
                t / "actions/crm/get-record.yaml",
                lambda s: s.replace("connection: zohoOAuth", "connection: zohoApiKey"),
            ),
            "actions/crm/get-record.yaml",
            "unknown connection 'zohoApiKey'",
        ),
        (
            lambda t: edit(
                t / "actions/crm/get-records.yaml", lambda s: s.replace("key: crmGetRecords", "key: crmGetRecord")
            ),
            "actions/crm/get-records.yaml",
            "duplicate action key 'crmGetRecord'",
        ),
        (
            lambda t: edit(
                t / "schemas/actions/crm/run-query.json",
                lambda s: s.replace("#/$defs/debugRequest", "#/$defs/debugRequets"),
            ),
            "schemas/actions/crm/run-query.json",
            "$ref '../../common.json#/$defs/debugRequets' at /properties/debugRequest does not resolve",
        ),
        (
            lambda t: edit_json(
                t / "schemas/actions/crm/run-query.json", lambda d: d["properties"]["query"].update(type="text")
            ),
            "schemas/actions/crm/run-query.json",
            "not a valid JSON Schema at /properties/query/type",
        ),
        (
            lambda t: edit(t / "actions/crm/run-query.yaml", lambda s: s.replace("product: crm", "product: desk")),
            "actions/crm/run-query.yaml",
            "unknown product 'desk'",
        ),
        (
            lambda t: edit(t / "actions/crm/run-query.yaml", lambda s: s.replace("{$input: query}", "{$input: qeury}")),
            "actions/crm/run-query.yaml",
            "request names inputs the schema does not declare: ['qeury']",
        ),
        (
            lambda t: edit(t / "actions/crm/run-query.yaml", lambda s: s.replace("safety: read", "safety: maybe")),
            "actions/crm/run-query.yaml",
            "does not match the action model (schemas/meta/action.schema.json): /safety",
        ),
        (
            lambda t: edit(t / "actions/crm/run-query.yaml", lambda s: s + "hook: sparkle\n"),
            "actions/crm/run-query.yaml",
            "unknown hook 'sparkle'",
        ),
        (
            lambda t: edit(
                t / "actions/crm/run-query.yaml", lambda s: s.replace("key: crmRunQuery", "key: [crmRunQuery")
            ),
            "actions/crm/run-query.yaml",
            "not valid YAML",
        ),
        (
            lambda t: edit(
                t / "manifest.yaml",
                lambda s: s.replace("  - actions/crm/run-query.yaml", "  - actions/crm/run-qeury.yaml"),
            ),
            "actions/crm/run-qeury.yaml",
            "file does not exist",
        ),
        (
            lambda t: edit(
                t / "connections/regions.yaml",
                lambda s: s.replace("api: https://www.zohoapis.eu", "api: http://www.zohoapis.eu"),
            ),
            "connections/regions.yaml",
            "/regions/eu/api",
        ),
        (
            lambda t: edit_json(t / "schemas/common.json", lambda d: d["$defs"]["recordId"].pop("title")),
            "schemas/actions/books/get-record.json",
            "input 'recordId' needs a title and a description",
        ),
        (
            lambda t: edit(
                t / "actions/crm/convert-lead.yaml", lambda s: s.replace("${answer.data.0.details}", "${reply.data}")
            ),
            "actions/crm/convert-lead.yaml",
            "result.output/details: '${reply.data}' must be one whole reference, ${answer…}",
        ),
        (
            lambda t: edit(
                t / "actions/crm/convert-lead.yaml", lambda s: s.replace("${answer.data.0.details}", "id ${answer.id}")
            ),
            "actions/crm/convert-lead.yaml",
            "must be one whole reference",
        ),
        (
            lambda t: edit(t / "actions/crm/create-records.yaml", lambda s: s + "result:\n  output: ${answer.data}\n"),
            "actions/crm/create-records.yaml",
            "result.output cannot be used with batch",
        ),
        (
            lambda t: edit(
                t / "actions/books/raw-request.yaml", lambda s: s.replace("  json_form_field: JSONString", "")
            ),
            "actions/books/raw-request.yaml",
            "a body sent with a form or files needs json_form_field",
        ),
    ],
    ids=[
        "missing-schema",
        "unknown-role",
        "duplicate-role",
        "mistyped-role",
        "suggestions-by-unknown-input",
        "unknown-pager",
        "unknown-connection",
        "duplicate-key",
        "dangling-ref",
        "invalid-schema",
        "unknown-product",
        "unknown-input",
        "bad-safety",
        "unknown-hook",
        "yaml-syntax",
        "missing-action-file",
        "bad-region",
        "untitled-input",
        "output-names-no-answer",
        "output-reference-in-text",
        "output-with-batch",
        "json-body-with-a-form-names-no-field",
    ],
)
def test_broken_manifest_names_file_and_problem(
    tree: Path, breakage: Callable[[Path], None], file: str, problem: str
) -> None:
    breakage(tree)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tree, use_cache=False)
    assert caught.value.file == file
    assert problem in caught.value.problem


def test_the_cache_notices_a_changed_file(tree: Path) -> None:
    assert load_manifest(tree).actions["crmRunQuery"].label == "CRM - COQL Query"
    edit(tree / "actions/crm/run-query.yaml", lambda s: s.replace("label: CRM - COQL Query", "label: CRM - Query"))
    assert load_manifest(tree).actions["crmRunQuery"].label == "CRM - Query"
    edit(tree / "actions/crm/run-query.yaml", lambda s: s.replace("safety: read", "safety: maybe"))
    with pytest.raises(ManifestError):
        load_manifest(tree)


def test_every_input_has_title_description_and_every_example_is_valid() -> None:
    """Examples and defaults shown to users must themselves pass the schema."""
    from connector._schema import violations

    manifest = load_manifest(use_cache=False)
    items: list[Action | Trigger] = [*manifest.actions.values(), *manifest.triggers.values()]
    for item in items:
        for name, prop in item.input_schema["properties"].items():
            for example in [*prop.get("examples", []), *([prop["default"]] if "default" in prop else [])]:
                assert not violations(prop, example), f"{item.key}.{name}: example {example!r}"


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.replace("  ultimate: 25\n", ""),
        lambda s: s.replace("  ultimate: 25\n", "  ultimate: 25\n  premium: 30\n"),
        lambda s: s.replace("  enterprise: 20\n", "  corporate: 20\n"),
    ],
    ids=["an-edition-without-a-concurrency", "a-concurrency-for-no-edition", "the-default-edition-missing"],
)
def test_the_editions_and_their_concurrency_are_data_and_agree_with_the_edition_input(
    tree: Path, change: Callable[[str], str]
) -> None:
    edit(tree / "connections/zoho-oauth.yaml", change)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tree, use_cache=False)
    assert caught.value.file == "connections/zoho-oauth.yaml"
    assert "the `edition` input must offer exactly the editions listed here" in caught.value.problem


def test_an_editions_concurrency_comes_from_the_connection_file(tree: Path) -> None:
    from connector.connection import resolve_connection

    edit(tree / "connections/zoho-oauth.yaml", lambda s: s.replace("  free: 5\n", "  free: 3\n"))
    definition = load_manifest(tree, use_cache=False).connections["zohoOAuth"]
    assert resolve_connection(definition, {"access_token": "t", "edition": "free"}).policy.max_concurrency == 3


def test_the_checked_in_meta_schemas_are_generated_from_the_models() -> None:
    """schemas/meta/*.json are for engines in other languages; regenerate with `python -m connector.models`."""
    from connector.manifest import data_root
    from connector.models import meta_schemas

    for kind, schema in meta_schemas().items():
        checked_in = json.loads((data_root() / "schemas" / "meta" / f"{kind}.schema.json").read_text())
        assert checked_in == schema, f"schemas/meta/{kind}.schema.json is stale: run python -m connector.models"


def test_every_data_file_passes_its_generated_meta_schema() -> None:
    """What the models accept, the published meta-schemas accept: an engine in another language agrees."""
    import yaml

    from connector._schema import violations
    from connector.manifest import data_root

    root = data_root()
    kinds = ("manifest", "action", "trigger")
    meta = {k: json.loads((root / "schemas/meta" / f"{k}.schema.json").read_text()) for k in kinds}
    manifest = yaml.safe_load((root / "manifest.yaml").read_text())
    assert not violations(meta["manifest"], manifest)
    for path in manifest["actions"]:
        assert not violations(meta["action"], yaml.safe_load((root / path).read_text())), path
    for path in manifest["triggers"]:
        assert not violations(meta["trigger"], yaml.safe_load((root / path).read_text())), path


def test_the_cache_is_rebuilt_when_the_checking_code_changes(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector import manifest as module

    first = module._cache_file(tree)
    checker = tree / "checker.py"
    checker.write_text("# a newer checker\n")
    monkeypatch.setattr(module, "_checker_files", lambda: [checker])
    assert module._cache_file(tree) != first


# Imported by a bundle build without shaping the bundle: the package's lazy names (its __version__ is in the
# fingerprint), the exception classes, and the hook registry (hooks are checked on every load, cache or not).
SHAPES_NO_BUNDLE = {"connector", "connector.errors", "connector.hooks"}


def test_the_fingerprint_covers_every_module_that_builds_a_bundle(tmp_path: Path) -> None:
    """The checker list is written by hand; a module the build imports but the list forgets (the schema engine, the
    strategies) could change what a bundle holds while an older bundle is still trusted. Found in a fresh process,
    so what this test session already imported does not hide anything."""
    import os
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from connector import manifest\n"
        "manifest.load_manifest(use_cache=False)\n"
        "used = {n: m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'connector'}\n"
        "print(json.dumps({'used': used, 'listed': [str(p) for p in manifest._checker_files()]}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "ZOHO_CONNECTOR_CACHE_DIR": str(tmp_path)}
    found = json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, check=True).stdout)
    listed = {str(Path(p).resolve()) for p in found["listed"]}
    forgotten = sorted(
        name
        for name, file in found["used"].items()
        if name not in SHAPES_NO_BUNDLE and str(Path(file).resolve()) not in listed
    )
    assert forgotten == []


def test_hooks_are_checked_on_every_load_even_from_the_cache(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector import hooks

    monkeypatch.setitem(hooks.HOOKS, "only_active", lambda inputs: inputs)
    edit(tree / "actions/crm/run-query.yaml", lambda s: s + "hook: only_active\n")
    load_manifest(tree)  # builds and caches the bundle
    monkeypatch.delitem(hooks.HOOKS, "only_active")
    with pytest.raises(ManifestError, match="unknown hook 'only_active'"):
        load_manifest(tree)  # from the cache


def test_every_role_has_a_type_and_the_input_meta_schema_enumerates_them() -> None:
    from typing import get_args

    from connector.models import ROLE_TYPES, Role, input_meta_schema

    assert list(ROLE_TYPES) == list(get_args(Role))
    assert input_meta_schema()["$defs"]["input"]["properties"]["x-role"]["enum"] == list(get_args(Role))


def test_every_input_schema_passes_the_input_meta_schema() -> None:
    """Engines in other languages learn the x- keywords (x-role's values above all) from schemas/meta/input."""
    from connector._schema import violations
    from connector.manifest import data_root

    root = data_root()
    meta = json.loads((root / "schemas/meta/input.schema.json").read_text())
    inputs = [sorted((root / "schemas" / folder).rglob("*.json")) for folder in ("actions", "triggers")]
    files = [root / "schemas/common.json", *inputs[0], *inputs[1]]
    assert len(files) > 50 and any("triggers" in f.parts for f in files)
    for file in files:
        assert not violations(meta, json.loads(file.read_text())), file
    page = {"type": "integer", "x-role": "page"}
    assert not violations(meta, {"properties": {"page": page}})
    assert violations(meta, {"properties": {"page": {**page, "x-role": "pagination"}}})
    assert violations(meta, {"$defs": {"page": {**page, "x-widget": "slider"}}})
