"""The CRM working surface's keys and named inputs are a contract (issue 11): engines and automations reference them.

Each action key, each input the issue names, whether it is required (`*` there), and the values the issue fixes
(trigger, converted, deleted-records type, moveAttachmentsTo, carryOverTags, fileType, the users' type from Zoho's
OpenAPI) are pinned here, so that a rename or a dropped input fails a test instead of an automation. Optional inputs
may be added freely; nothing here forbids them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, InputValidationError
from connector.manifest import bundled_manifest

# key: {input: required}, as issue 11 lists them ("*" = required)
CONTRACT: dict[str, dict[str, bool]] = {
    "crmSearchRecords": {
        "recordType": True,
        **dict.fromkeys(["criteria", "email", "phone", "word", "fields", "page", "per_page", "fetchAll"], False),
    },
    "crmGetRecordsCount": {"recordType": True, **dict.fromkeys(["criteria", "email", "phone", "word", "cvid"], False)},
    "crmCreateRecords": {"recordType": True, "records": True, "trigger": False},
    "crmUpdateRecords": {"recordType": True, "records": True, "trigger": False},
    "crmUpsertRecords": {"recordType": True, "records": True, "trigger": False, "duplicateCheckFields": False},
    "crmDeleteRecords": {"recordType": True, "recordIds": True, "wfTrigger": False},
    "crmCreateRecord": {"trigger": False},
    "crmUpdateRecord": {"trigger": False},
    "crmRemoveRecord": {"wfTrigger": False},
    "crmGetRecords": dict.fromkeys(["cvid", "ids", "converted", "modifiedSince"], False),
    "crmRunQuery": {"fetchAll": False, "includeMeta": False},
    "crmGetDeletedRecords": {"recordType": True, **dict.fromkeys(["type", "page", "per_page", "fetchAll"], False)},
    "crmGetRelatedRecords": {
        **dict.fromkeys(["recordType", "recordId", "relatedList"], True),
        **dict.fromkeys(["fields", "page", "per_page", "fetchAll"], False),
    },
    "crmLinkRelatedRecord": {
        **dict.fromkeys(["recordType", "recordId", "relatedList", "relatedRecordId"], True),
        "fieldValues": False,
    },
    "crmDelinkRelatedRecord": dict.fromkeys(["recordType", "recordId", "relatedList", "relatedRecordId"], True),
    "crmListNotes": dict.fromkeys(["recordType", "recordId", "fields", "page", "per_page", "fetchAll"], False),
    "crmCreateNote": {"recordType": True, "recordId": True, "noteContent": True, "noteTitle": False},
    "crmUpdateNote": {"noteId": True, "noteContent": False, "noteTitle": False},
    "crmDeleteNote": {"noteId": True},
    "crmListAttachments": {
        "recordType": True,
        "recordId": True,
        **dict.fromkeys(["fields", "page", "per_page", "fetchAll"], False),
    },
    "crmDownloadAttachment": dict.fromkeys(["recordType", "recordId", "attachmentId"], True),
    "crmDeleteAttachment": dict.fromkeys(["recordType", "recordId", "attachmentId"], True),
    "crmAddAttachmentFromUrl": {"recordType": True, "recordId": True, "attachmentUrl": True, "title": False},
    "crmConvertLead": {
        "recordId": True,
        **dict.fromkeys(
            [
                "overwrite",
                "notifyLeadOwner",
                "notifyNewEntityOwner",
                "accountId",
                "contactId",
                "deal",
                "assignTo",
                "moveAttachmentsTo",
                "carryOverTags",
            ],
            False,
        ),
    },
    "crmListUsers": dict.fromkeys(["type", "page", "per_page", "fetchAll"], False),
    "crmGetUser": {"userId": True},
    "crmGetOrganization": {},
    "crmListModules": {},
    "crmListFields": {"recordType": True},
    "crmListLayouts": {"recordType": True},
    "crmListCustomViews": {"recordType": True},
    "crmListRelatedLists": {"recordType": True},
    "crmCreateBulkReadJob": {
        "recordType": True,
        **dict.fromkeys(["fields", "criteria", "cvid", "fileType", "callbackUrl"], False),
    },
    "crmGetBulkReadJob": {"jobId": True},
    "crmBulkReadRecords": {"recordType": True, "fields": False, "criteria": False},
    "crmRawRequest": {"url": True},
}
# Inputs the issue does not list for an action the older issues defined (still required there).
EARLIER = {
    "crmCreateRecord": {"recordType"},
    "crmUpdateRecord": {"recordType", "recordId"},
    "crmRemoveRecord": {"recordType", "recordId"},
    "crmGetRecords": {"recordType", "fields"},
    "crmRunQuery": {"query"},
}
TRIGGERS = ["workflow", "approval", "blueprint"]
MODULES = ["Contacts", "Accounts", "Deals"]
# input → the values it takes (for an array, its items')
ENUMS: dict[tuple[str, str], list[Any]] = {
    **{(key, "trigger"): TRIGGERS for key in CONTRACT if "trigger" in CONTRACT[key]},
    ("crmGetRecords", "converted"): ["true", "false", "both"],
    ("crmGetDeletedRecords", "type"): ["all", "recycle", "permanent"],
    ("crmConvertLead", "moveAttachmentsTo"): MODULES,
    ("crmConvertLead", "carryOverTags"): MODULES,
    ("crmCreateBulkReadJob", "fileType"): ["csv", "ics"],
}
BOOLEANS = [
    ("crmDeleteRecords", "wfTrigger"),
    ("crmRemoveRecord", "wfTrigger"),
    ("crmRunQuery", "includeMeta"),
    *((key, "fetchAll") for key in CONTRACT if "fetchAll" in CONTRACT[key] and key != "crmBulkReadRecords"),
]
OAS = Path(__file__).resolve().parents[2].parent / "shared" / "zoho-crm-oas"


def resolved(key: str, name: str) -> dict[str, Any]:
    """The input's schema with its $refs followed (what a caller is held to)."""
    node: dict[str, Any] = bundled_manifest().action(key).input_schema["properties"][name]
    return node


def enum_of(node: dict[str, Any]) -> list[Any] | None:
    items = node.get("items")
    found = (items if node.get("type") == "array" and isinstance(items, dict) else node).get("enum")
    return list(found) if found is not None else None


@pytest.mark.parametrize("key", sorted(CONTRACT))
def test_every_key_and_named_input_is_there_as_the_issue_lists_it(key: str) -> None:
    manifest = bundled_manifest()
    assert key in manifest.actions, f"{key} is not in the manifest"
    schema = manifest.action(key).input_schema
    required = set(schema.get("required", []))
    missing = sorted(set(CONTRACT[key]) - set(schema["properties"]))
    assert not missing, f"{key} lacks {missing}"
    assert {n for n, r in CONTRACT[key].items() if r} <= required
    assert not {n for n, r in CONTRACT[key].items() if not r} & required, "an optional input became required"
    assert required <= {n for n, r in CONTRACT[key].items() if r} | EARLIER.get(key, set()), (
        f"{key} requires more than the issue lists: {sorted(required)}"
    )


@pytest.mark.parametrize(("key", "name"), sorted(ENUMS))
def test_the_issues_values_are_exactly_the_ones_taken(key: str, name: str) -> None:
    assert enum_of(resolved(key, name)) == ENUMS[(key, name)]


@pytest.mark.parametrize(("key", "name"), sorted(BOOLEANS))
def test_flags_are_booleans(key: str, name: str) -> None:
    assert resolved(key, name)["type"] == "boolean"


def test_search_needs_one_of_its_terms_and_count_may_have_none() -> None:
    search = bundled_manifest().action("crmSearchRecords").input_schema
    assert sorted(next(iter(a["required"])) for a in search["anyOf"]) == ["criteria", "email", "phone", "word"]
    assert "anyOf" not in bundled_manifest().action("crmGetRecordsCount").input_schema


def test_bulk_lists_take_any_length_and_updates_need_ids() -> None:
    for key, name in [
        ("crmCreateRecords", "records"),
        ("crmUpdateRecords", "records"),
        ("crmUpsertRecords", "records"),
        ("crmDeleteRecords", "recordIds"),
    ]:
        assert "maxItems" not in resolved(key, name), f"{key}.{name} is capped"
        batch = bundled_manifest().action(key).batch
        assert batch is not None and (batch["input"], batch["size"]) == (name, 100)  # Zoho's maximum a call
    assert resolved("crmUpdateRecords", "records")["items"]["required"] == ["id"]
    assert resolved("crmUpsertRecords", "duplicateCheckFields")["items"]["type"] == "string"


def test_users_type_offers_every_value_zohos_openapi_lists() -> None:
    """crmListUsers' `type` takes the values users.json lists (and the other four Zoho's Get Users page documents,
    AdminUsers among them, see test_crm_conformance._fix_users)."""
    path = OAS / "users.json"
    if not path.exists():
        pytest.skip(f"Zoho's CRM OpenAPI files are not at {OAS}")
    oas = json.loads(path.read_text())["components"]["parameters"]["type"]["schema"]["enum"]
    ours = enum_of(resolved("crmListUsers", "type"))
    assert ours is not None and set(oas) <= set(ours)
    assert {"ActiveUsers", "AdminUsers", "CurrentUser"} <= set(ours)


@pytest.mark.parametrize(
    ("key", "inputs", "name"),
    [
        ("crmCreateRecords", {"recordType": "Leads", "records": [{}], "trigger": ["email"]}, "trigger"),
        ("crmUpsertRecords", {"recordType": "Leads", "records": [{}], "trigger": "workflow"}, "trigger"),
        ("crmCreateRecord", {"recordType": "Leads", "fieldValues": {}, "trigger": ["Workflow"]}, "trigger"),
        ("crmUpdateRecords", {"recordType": "Leads", "records": [{"Last_Name": "x"}]}, "records"),
        ("crmDeleteRecords", {"recordType": "Leads", "recordIds": "1,2"}, "recordIds"),
        ("crmDeleteRecords", {"recordType": "Leads", "recordIds": ["1"], "wfTrigger": "sometimes"}, "wfTrigger"),
        ("crmGetRecords", {"recordType": "Leads", "fields": ["Email"], "converted": "maybe"}, "converted"),
        ("crmGetRecords", {"recordType": "Leads", "fields": ["Email"], "modifiedSince": "today"}, "modifiedSince"),
        ("crmGetDeletedRecords", {"recordType": "Leads", "type": "trash"}, "type"),
        ("crmConvertLead", {"recordId": "1", "moveAttachmentsTo": "Leads"}, "moveAttachmentsTo"),
        ("crmConvertLead", {"recordId": "1", "carryOverTags": ["Leads"]}, "carryOverTags"),
        ("crmConvertLead", {"recordId": "1", "deal": "Big deal"}, "deal"),
        ("crmListUsers", {"type": "EveryUser"}, "type"),
        (
            "crmUpsertRecords",
            {"recordType": "Leads", "records": [], "duplicateCheckFields": "Email"},
            "duplicateCheckFields",
        ),
        ("crmCreateBulkReadJob", {"recordType": "Leads", "fileType": "xlsx"}, "fileType"),
        ("crmRunQuery", {"query": "select Email from Leads", "includeMeta": "sometimes"}, "includeMeta"),
        ("crmRawRequest", {"url": "/crm/../v2/Leads"}, "url"),
    ],
)
def test_a_value_outside_the_contract_is_refused_naming_the_input(
    key: str,
    inputs: dict[str, Any],
    name: str,
    connector: Connector,
    connection: dict[str, Any],
    httpx_mock: HTTPXMock,
) -> None:
    with pytest.raises(InputValidationError) as caught:
        connector.run(key, inputs, connection=connection)
    assert name in {v.input for v in caught.value.violations}, caught.value
    assert httpx_mock.get_requests() == []


def test_every_named_input_is_sent_in_an_openapi_conformance_case() -> None:
    """test_crm_conformance checks each case's requests against Zoho's OpenAPI: each input named here is in one."""
    from tests.actions.test_crm_conformance import CASES, action_of

    used: dict[str, set[str]] = {}
    for case, inputs in CASES.items():
        used.setdefault(action_of(case), set()).update(inputs)
    # crmRawRequest's url is the caller's own request, checked by tests/actions/test_crm_actions.py
    unsent = {
        key: sorted(set(names) - used.get(key, set())) for key, names in CONTRACT.items() if key != "crmRawRequest"
    }
    assert {key: names for key, names in unsent.items() if names} == {}
