"""Dynamic inputs against the sandbox: `options` and `describe` through Python and the CLI, the per-account
metadata cache (TTL on an injected clock, refresh), and what a caller gets wrong."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector import Connector
from connector.cli import main
from connector.errors import InputValidationError, ManifestError
from connector.manifest import data_root, load_manifest
from connector.sandbox import SandboxState, serve_in_thread
from tests.e2e.connections import with_access_token


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxState()) as base:
        yield base


@pytest.fixture
def connection(sandbox: str) -> dict[str, Any]:
    return with_access_token(sandbox)


def copy_tree(tmp_path: Path) -> Path:
    """A private copy of the bundled data files."""
    root = tmp_path / "component"
    root.mkdir()
    shutil.copy(data_root() / "manifest.yaml", root)
    for folder in ("actions", "triggers", "automations", "connections", "schemas"):
        if (data_root() / folder).is_dir():
            shutil.copytree(data_root() / folder, root / folder)
    return root


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def fields_calls(sandbox: str) -> int:
    stats = httpx.get(f"{sandbox}/__sandbox/stats").json()
    return int(stats["requests"].get("GET /crm/v8/settings/fields", 0))


def values(choices: list[dict[str, Any]]) -> list[Any]:
    return [c["value"] for c in choices]


def test_modules_fields_views_and_picklists(connection: dict[str, Any]) -> None:
    connector = Connector.load()
    modules = connector.options("crmGetRecords", "recordType", {}, connection=connection)
    assert {"value": "Leads", "label": "Leads"} in modules and "Deals" in values(modules)

    fields = connector.options("crmGetRecords", "fields", {"recordType": "Deals"}, connection=connection)
    assert {"value": "Stage", "label": "Stage"} in fields and "Last_Name" not in values(fields)

    views = connector.options("crmCreateBulkReadJob", "cvid", {"recordType": "Leads"}, connection=connection)
    assert [v["label"] for v in views] == ["All Leads", "My Leads"]
    assert all(v["value"].isdigit() for v in views)

    stages = connector.options("crmCreateRecord", "fieldValues/Stage", {"recordType": "Deals"}, connection=connection)
    assert stages[0] == {"value": "Qualification", "label": "Qualification"} and len(stages) > 3
    same = connector.options("crmUpdateRecord", "fieldValues.Stage", {"recordType": "Deals"}, connection=connection)
    assert same == stages
    # a field that is not a picklist has no values to pick
    assert (
        connector.options("crmCreateRecord", "fieldValues/Amount", {"recordType": "Deals"}, connection=connection) == []
    )


def test_user_inputs_list_active_users(tmp_path: Path, connection: dict[str, Any]) -> None:
    """Any input declared as a CRM user id (common.json crmUserId) offers the account's active users."""
    tree = copy_tree(tmp_path)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {"userId": {"$ref": "../../common.json#/$defs/crmUserId"}},
        "required": ["userId"],
    }
    (tree / "schemas/actions/crm/get-user-example.json").write_text(json.dumps(schema))
    (tree / "actions/crm/get-user-example.yaml").write_text(
        "key: crmGetUserExample\nlabel: CRM - Get User\ndescription: A user\nproduct: crm\nconnection: zohoOAuth\n"
        "inputs: schemas/actions/crm/get-user-example.json\nsafety: read\n"
        "request: {method: GET, path: '/users/{userId}'}\nexample_output: {data: {}}\n"
    )
    manifest = tree / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace("\nactions:\n", "\nactions:\n  - actions/crm/get-user-example.yaml\n", 1)
    )
    with Connector.load(tree) as connector:
        choices = connector.options("crmGetUserExample", "userId", {}, connection=connection)
        active = connector.run("crmListUsers", {"type": "ActiveUsers", "fetchAll": True}, connection=connection)
    assert values(choices) == [u["id"] for u in active["data"]["users"]]
    assert all(c["label"] for c in choices)


def test_the_real_actions_offer_users_and_custom_views(connection: dict[str, Any]) -> None:
    """The actions that take a user or a custom view offer them (common.json crmUserId, crmCvid), not only an
    example action."""
    connector = Connector.load()
    active = connector.run("crmListUsers", {"type": "ActiveUsers", "fetchAll": True}, connection=connection)
    users = [u["id"] for u in active["data"]["users"]]
    assert values(connector.options("crmConvertLead", "assignTo", {}, connection=connection)) == users
    assert values(connector.options("crmGetUser", "userId", {}, connection=connection)) == users
    views = connector.options("crmCreateBulkReadJob", "cvid", {"recordType": "Leads"}, connection=connection)
    for action in ("crmGetRecords", "crmGetRecordsCount"):
        assert connector.options(action, "cvid", {"recordType": "Leads"}, connection=connection) == views
    # their validation stays: a custom view id is digits
    with pytest.raises(InputValidationError) as caught:
        connector.run("crmGetRecordsCount", {"recordType": "Leads", "cvid": "all"}, connection=connection)
    assert [v.input for v in caught.value.violations] == ["cvid"]


def test_convert_lead_offers_and_describes_the_deal_from_the_deals_module(connection: dict[str, Any]) -> None:
    connector = Connector.load()
    stages = connector.options("crmConvertLead", "deal/Stage", {}, connection=connection)
    assert {"value": "Qualification", "label": "Qualification"} in stages
    assert "Deal_Name" in values(connector.options("crmConvertLead", "deal", {}, connection=connection))
    deal = connector.describe("crmConvertLead", {}, connection=connection)["properties"]["deal"]
    assert deal["type"] == "object" and deal["required"] == ["Deal_Name"]
    assert "Closed Won" in deal["properties"]["Stage"]["enum"] and "Last_Name" not in deal["properties"]


@pytest.mark.parametrize(
    ("action", "inputs", "wanted"),
    [
        ("crmListNotes", {}, {"Note_Title", "Note_Content", "Parent_Id"}),  # every note: no record needed
        ("crmListNotes", {"recordType": "Leads", "recordId": "1"}, {"Note_Title", "Note_Content"}),
        ("crmListAttachments", {"recordType": "Leads", "recordId": "1"}, {"File_Name", "Size", "$link_url"}),
    ],
)
def test_notes_and_attachments_fields_are_their_own(
    connection: dict[str, Any], action: str, inputs: dict[str, Any], wanted: set[str]
) -> None:
    connector = Connector.load()
    fields = set(values(connector.options(action, "fields", inputs, connection=connection)))
    assert wanted <= fields and not {"Last_Name", "Lead_Status", "Company"} & fields
    # the default and the examples the schema shows are among the choices
    declared = connector.actions[action].input_schema["properties"]["fields"]
    assert set(declared["default"]) <= fields
    assert declared["examples"] and all(set(example) <= fields for example in declared["examples"])


def test_related_records_fields_come_from_the_related_lists_module(connection: dict[str, Any]) -> None:
    connector = Connector.load()
    ask = {"recordType": "Accounts", "recordId": "1", "relatedList": "Contacts"}
    fields = values(connector.options("crmGetRelatedRecords", "fields", ask, connection=connection))
    assert "Last_Name" in fields and "Account_Type" not in fields  # a Contact's fields, not the Account's
    lists = values(connector.options("crmGetRelatedRecords", "relatedList", ask, connection=connection))
    assert {"Contacts", "Deals", "Notes", "Attachments"} <= set(lists)
    notes = values(
        connector.options("crmGetRelatedRecords", "fields", {**ask, "relatedList": "Notes"}, connection=connection)
    )
    assert "Note_Title" in notes
    with pytest.raises(InputValidationError) as caught:
        connector.options("crmGetRelatedRecords", "fields", {**ask, "relatedList": "Gadgets"}, connection=connection)
    assert [v.input for v in caught.value.violations] == ["relatedList"]
    assert "Contacts" in caught.value.violations[0].message  # says which related lists there are
    with pytest.raises(InputValidationError) as caught:
        connector.options("crmGetRelatedRecords", "fields", {"recordType": "Accounts"}, connection=connection)
    assert [v.input for v in caught.value.violations] == ["relatedList"]


def test_every_related_list_and_field_name_input_offers_its_choices(connection: dict[str, Any]) -> None:
    """Not only crmGetRelatedRecords: linking and delinking pick the related list from the module's own, and an
    upsert's duplicate check fields are the module's field API names, as `fields` inputs are."""
    connector = Connector.load()
    ask = {"recordType": "Accounts"}
    lists = values(connector.options("crmGetRelatedRecords", "relatedList", ask, connection=connection))
    for action in ("crmLinkRelatedRecord", "crmDelinkRelatedRecord"):
        assert values(connector.options(action, "relatedList", ask, connection=connection)) == lists
        with pytest.raises(InputValidationError) as caught:
            connector.options(action, "relatedList", {}, connection=connection)
        assert [v.input for v in caught.value.violations] == ["recordType"]
    leads = {"recordType": "Leads"}
    fields = values(connector.options("crmGetRecords", "fields", leads, connection=connection))
    duplicate = values(connector.options("crmUpsertRecords", "duplicateCheckFields", leads, connection=connection))
    assert duplicate == fields and "Email" in duplicate


def test_related_records_options_from_the_command_line(
    connection: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn = json.dumps(connection)
    ask = json.dumps({"recordType": "Accounts", "relatedList": "Deals"})
    assert main(["options", "crmGetRelatedRecords", "fields", "--inputs", ask, "--connection", conn]) == 0
    assert "Stage" in values(json.loads(capsys.readouterr().out))
    assert main(["options", "crmListNotes", "fields", "--connection", conn]) == 0
    assert "Note_Title" in values(json.loads(capsys.readouterr().out))
    assert main(["options", "crmConvertLead", "assignTo", "--connection", conn]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"]


def test_describe_expands_field_values_into_the_module_fields(connection: dict[str, Any]) -> None:
    connector = Connector.load()
    create = connector.describe("crmCreateRecord", {"recordType": "Leads"}, connection=connection)
    values_schema = create["properties"]["fieldValues"]
    props = values_schema["properties"]
    assert values_schema["type"] == "object" and values_schema["additionalProperties"] is False
    assert props["Last_Name"]["type"] == "string" and props["Last_Name"]["maxLength"] == 80
    assert props["Email"]["format"] == "email"
    assert "Contacted" in props["Lead_Status"]["enum"]
    assert props["No_of_Employees"]["type"] == "integer"
    assert props["Full_Name"]["readOnly"] is True
    assert values_schema["required"] == ["Last_Name"]
    # a module's other inputs get their choices
    assert "Leads" in values(create["properties"]["recordType"]["x-choices"])

    update = connector.describe("crmUpdateRecord", {"recordType": "Leads"}, connection=connection)
    assert "required" not in update["properties"]["fieldValues"]  # an update changes only what it names

    from jsonschema import Draft202012Validator

    form = Draft202012Validator(values_schema)
    assert form.is_valid({"Last_Name": "Doe", "Lead_Status": "Contacted"})
    assert not form.is_valid({"Last_Name": "Doe", "Lead_Status": "Sleeping"})  # not a picklist value
    assert not form.is_valid({"Lead_Status": "Contacted"})  # Last_Name is mandatory
    assert not form.is_valid({"Last_Name": "x" * 81})


def test_describe_expands_each_record_of_a_bulk_write(connection: dict[str, Any]) -> None:
    connector = Connector.load()
    create = connector.describe("crmCreateRecords", {"recordType": "Leads"}, connection=connection)
    item = create["properties"]["records"]["items"]
    assert (
        item["properties"]["Last_Name"]["maxLength"] == 80 and "Contacted" in item["properties"]["Lead_Status"]["enum"]
    )
    assert item["required"] == ["Last_Name"]
    update = connector.describe("crmUpdateRecords", {"recordType": "Leads"}, connection=connection)
    assert update["properties"]["records"]["items"]["required"] == ["id"]  # the id, not the fields: an update
    assert "Email" in values(
        connector.options("crmUpsertRecords", "records", {"recordType": "Leads"}, connection=connection)
    )


def test_describe_without_the_module_leaves_the_inputs_as_declared(connection: dict[str, Any]) -> None:
    connector = Connector.load()
    schema = connector.describe("crmCreateRecord", {}, connection=connection)
    assert (
        schema["properties"]["fieldValues"]
        == connector.actions["crmCreateRecord"].input_schema["properties"]["fieldValues"]
    )


def test_metadata_is_cached_per_account_for_ten_minutes(sandbox: str, connection: dict[str, Any]) -> None:
    clock = Clock()
    connector = Connector.load(clock=clock)
    before = fields_calls(sandbox)
    ask = {"recordType": "Accounts"}
    first = connector.options("crmGetRecords", "fields", ask, connection=connection)
    connector.options("crmGetRecords", "fields", ask, connection=connection)
    connector.describe("crmCreateRecord", ask, connection=connection)  # the same metadata call, cached too
    assert fields_calls(sandbox) == before + 1

    clock.now += 599
    connector.options("crmGetRecords", "fields", ask, connection=connection)
    assert fields_calls(sandbox) == before + 1
    clock.now += 2
    assert connector.options("crmGetRecords", "fields", ask, connection=connection) == first
    assert fields_calls(sandbox) == before + 2

    connector.options("crmGetRecords", "fields", ask, connection=connection, refresh=True)
    assert fields_calls(sandbox) == before + 3

    other_account = with_access_token(sandbox)  # another identity: its own cache entry
    connector.options("crmGetRecords", "fields", ask, connection=other_account)
    assert fields_calls(sandbox) == before + 4


def test_refresh_sees_a_new_module(sandbox: str, connection: dict[str, Any]) -> None:
    connector = Connector.load(clock=Clock())
    assert "Gadgets" not in values(connector.options("crmGetRecords", "recordType", {}, connection=connection))
    module = {"api_name": "Gadgets", "fields": [{"api_name": "Name", "data_type": "text", "mandatory": True}]}
    assert httpx.post(f"{sandbox}/__sandbox/modules", json=module).status_code == 200
    cached = connector.options("crmGetRecords", "recordType", {}, connection=connection)
    assert "Gadgets" not in values(cached)  # within the TTL: the cached list
    fresh = connector.options("crmGetRecords", "recordType", {}, connection=connection, refresh=True)
    assert "Gadgets" in values(fresh)


@pytest.mark.parametrize(
    ("action", "name", "inputs", "input", "message"),
    [
        ("crmGetRecords", "fields", {}, "recordType", "is required to list the options of fields"),
        ("crmGetRecords", "colour", {}, "colour", "unknown input"),
        (
            "crmGetRecords",
            "sort_order",
            {},
            "sort_order",
            "has no options; inputs with options: cvid, fields, recordType",
        ),
        ("crmGetRecords", "fields", {"recordType": "no such/module"}, "recordType", "does not match"),
        ("crmCreateRecord", "fieldValues/Colour", {"recordType": "Leads"}, "fieldValues", "not one of the choices"),
        ("crmGetRecords", "fields/Email", {"recordType": "Leads"}, "fields", "no options per key"),
        ("crmNoSuchAction", "fields", {}, "(action)", "unknown action"),
    ],
)
def test_bad_option_requests_are_input_errors(
    connection: dict[str, Any], action: str, name: str, inputs: dict[str, Any], input: str, message: str
) -> None:
    with pytest.raises(InputValidationError) as caught:
        Connector.load().options(action, name, inputs, connection=connection)
    assert [v.input for v in caught.value.violations] == [input]
    assert message in caught.value.violations[0].message


def test_an_unknown_module_is_zohos_answer(connection: dict[str, Any]) -> None:
    from connector.errors import ZohoAPIError

    with pytest.raises(ZohoAPIError) as caught:
        Connector.load().options("crmGetRecords", "fields", {"recordType": "Gizmos"}, connection=connection)
    assert caught.value.code == "INVALID_MODULE"


def test_options_and_describe_from_the_command_line(
    connection: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conn = json.dumps(connection)
    ask = json.dumps({"recordType": "Deals"})
    assert main(["options", "crmCreateRecord", "fieldValues/Stage", "--inputs", ask, "--connection", conn]) == 0
    stages = json.loads(capsys.readouterr().out)
    assert {"value": "Qualification", "label": "Qualification"} in stages

    assert main(["options", "crmGetRecords", "fields", "--inputs", ask, "--connection", conn, "--refresh"]) == 0
    assert "Amount" in values(json.loads(capsys.readouterr().out))

    assert main(["describe", "crmCreateRecord", "--inputs", ask, "--connection", conn]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["fieldValues"]["required"] == ["Deal_Name"]

    assert main(["describe", "crmCreateRecord"]) == 0  # without a connection: the text view, as before
    assert "fieldValues" in capsys.readouterr().out

    assert main(["options", "crmGetRecords", "fields", "--connection", conn]) == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["type"] == "invalid_input" and error["violations"][0]["input"] == "recordType"


def test_the_command_line_keeps_metadata_between_runs_for_the_ttl(
    sandbox: str,
    connection: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each `zoho-connector options`/`describe` is a process of its own: the metadata is kept in the cache
    directory for the TTL, per account, so a second run asks Zoho nothing and `--refresh` asks again."""
    conn = json.dumps(connection)
    ask = json.dumps({"recordType": "Contacts"})
    before = fields_calls(sandbox)
    for _ in range(2):
        assert main(["options", "crmGetRecords", "fields", "--inputs", ask, "--connection", conn]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert main(["describe", "crmCreateRecord", "--inputs", ask, "--connection", conn]) == 0
    capsys.readouterr()
    assert fields_calls(sandbox) == before + 1

    assert main(["options", "crmGetRecords", "fields", "--inputs", ask, "--connection", conn, "--refresh"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert fields_calls(sandbox) == before + 2

    other = json.dumps(with_access_token(sandbox))  # another account: its own entry
    assert main(["options", "crmGetRecords", "fields", "--inputs", ask, "--connection", other]) == 0
    capsys.readouterr()
    assert fields_calls(sandbox) == before + 3

    cache = tmp_path / "cache" / "metadata"  # ZOHO_CONNECTOR_CACHE_DIR (tests/conftest.py)
    files = sorted(cache.glob("*.json"))
    assert files and all(len(f.stem) == 64 for f in files)  # digests: no token or account name in a file name
    assert all(connection["access_token"] not in f.read_text() for f in files)
    assert cache.stat().st_mode & 0o777 == 0o700 and all(f.stat().st_mode & 0o777 == 0o600 for f in files)

    # past the TTL (the files say when) the next run asks again
    for f in files:
        held = json.loads(f.read_text())
        f.write_text(json.dumps({**held, "expires": held["expires"] - 601}))
    assert main(["options", "crmGetRecords", "fields", "--inputs", ask, "--connection", conn]) == 0
    capsys.readouterr()
    assert fields_calls(sandbox) == before + 4


def test_an_unreadable_metadata_file_is_fetched_again(connection: dict[str, Any], tmp_path: Path) -> None:
    connector = Connector.load(metadata_dir=tmp_path / "m")
    ask = {"recordType": "Leads"}
    fields = connector.options("crmGetRecords", "fields", ask, connection=connection)
    for f in (tmp_path / "m").glob("*.json"):
        f.write_text("{not json")
    again = Connector.load(metadata_dir=tmp_path / "m").options("crmGetRecords", "fields", ask, connection=connection)
    assert again == fields
    assert all(json.loads(f.read_text())["value"] for f in (tmp_path / "m").glob("*.json"))  # rewritten


# --- x-options is checked when the manifest loads ---------------------------------------------------------------


def _tree_with(tmp_path: Path, change: dict[str, Any]) -> Path:
    root = copy_tree(tmp_path)
    path = root / "schemas/actions/crm/get-records.json"
    schema = json.loads(path.read_text())
    schema["properties"]["fields"] = {**schema["properties"]["fields"], "x-options": change}
    path.write_text(json.dumps(schema))
    return root


GOOD = {"action": "crmListFields", "inputs": {"recordType": "recordType"}, "list": "fields", "value": "api_name"}
LOOKUP = {
    "action": "crmListRelatedLists",
    "inputs": {"recordType": "recordType"},
    "list": "related_lists",
    "match": {"api_name": "recordType"},
    "value": "module.api_name",
}
LOOKED_UP = {"action": "crmListFields", "list": "fields", "value": "api_name", "label": "display_label"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({**GOOD, "label": "display_label", "action": "crmListGadgets"}, "unknown action 'crmListGadgets'"),
        ({**GOOD, "label": "display_label", "action": "crmCreateRecord"}, "not a read action"),
        ({**GOOD, "label": "display_label", "inputs": {"module": "recordType"}}, "has no inputs ['module']"),
        ({**GOOD, "label": "display_label", "inputs": {"recordType": "module"}}, "does not declare: ['module']"),
        ({**GOOD, "label": "display_label", "inputs": {}}, "required inputs ['recordType']"),
        ({**GOOD, "label": "display_label", "schema": "nope"}, "unknown field_schema 'nope'"),
        ({**GOOD, "label": "display_label", "schema": "crm_field"}, "apply to keys or item_keys"),
        (GOOD, "label"),  # label is required
        ({**LOOKED_UP, "lookups": {"recordType": {**LOOKUP, "action": "crmListGadgets"}}}, "names unknown action"),
        ({**LOOKED_UP, "lookups": {"recordType": {**LOOKUP, "match": {"api_name": "x"}}}}, "undeclared inputs: ['x']"),
        ({**LOOKED_UP, "lookups": {"recordType": {**LOOKUP, "inputs": {}}}}, "required inputs ['recordType']"),
        ({**LOOKED_UP, "lookups": {"module": LOOKUP}}, "has no inputs ['module']"),
        ({**LOOKED_UP, "lookups": {"recordType": {**LOOKUP, "match": {}}}}, "lookups"),  # match names one at least
        ({**GOOD, "label": "x", "colour": "red"}, "colour"),  # unknown keys are refused
    ],
)
def test_a_broken_x_options_fails_at_load(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(_tree_with(tmp_path, change), use_cache=False)
    assert "get-records.json" in str(caught.value) and problem in str(caught.value)
