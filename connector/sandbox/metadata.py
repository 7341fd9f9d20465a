"""Metadata documents for /settings/modules, /settings/fields and /org.

Zoho's OpenAPI files mark dozens of keys required on these objects; the templates carry every one of them so
clients that read metadata see the same shape as from real Zoho.
"""

from __future__ import annotations

from typing import Any

from connector.sandbox.state import CRM_ID_BASE, JSON, FieldDef, ModuleDef, SandboxState

_JSON_TYPES = {
    "integer": "integer",
    "bigint": "string",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "boolean": "boolean",
    "lookup": "jsonobject",
    "ownerlookup": "jsonobject",
    "multiselectpicklist": "jsonarray",
}
_NULL_REF = {"api_name": None, "id": None}
_FIELD_ID_BASE = 5_843_166_100_000_000_000


def field_meta(module: ModuleDef, f: FieldDef, seq: int) -> JSON:
    fid = str(_FIELD_ID_BASE + (int(module.id) - CRM_ID_BASE) * 1000 + seq)
    is_system = f.api_name in {"Owner", "Created_By", "Modified_By", "Created_Time", "Modified_Time"}
    return {
        "associated_module": _NULL_REF,
        "data_type": f.data_type,
        "operation_type": {
            "web_update": not f.read_only,
            "api_create": not f.read_only,
            "web_create": not f.read_only,
            "api_update": not f.read_only,
        },
        "system_mandatory": f.mandatory,
        "webhook": True,
        "sequence_number": seq,
        "blueprint_supported": not f.read_only,
        "virtual_field": False,
        "field_read_only": f.read_only,
        "customizable_properties": [],
        "read_only": f.read_only,
        "custom_field": f.custom,
        "businesscard_supported": True,
        "filterable": True,
        "visible": True,
        "available_in_user_layout": True,
        "display_field": f.api_name == module.display_field,
        "pick_list_values_sorted_lexically": False,
        "sortable": True,
        "layout_associations": [],
        "separator": False,
        "searchable": True,
        "enable_colour_code": False,
        "mass_update": not f.read_only,
        "json_type": _JSON_TYPES.get(f.data_type, "string"),
        "created_source": "custom" if f.custom else "default",
        "type": "used",
        "display_label": f.label or f.api_name,
        "column_name": f.api_name.upper(),
        "api_name": f.api_name,
        "display_type": -1,
        "ui_type": 1,
        "colour_code_enabled_by_system": None,
        "length": f.length or 0,
        "decimal_place": 2 if f.data_type in {"currency", "double", "percent"} else None,
        "quick_sequence_number": str(seq),
        "email_parser": {"fields_update_supported": None, "record_operations_supported": None},
        "rollup_summary": None,
        "refer_from_field": _NULL_REF,
        "created_time": None,
        "modified_time": None,
        "show_type": 0,
        "category": 0 if is_system else 1,
        "id": fid,
        "multi_module_lookup": None,
        "sharing_properties": {},
        "currency": None,
        "file_upolad_optionlist": [],
        "lookup": _lookup(f),
        "profiles": [],
        "view_type": {"view": True, "edit": not f.read_only, "quick_create": f.mandatory, "create": not f.read_only},
        "unique": {"casesensitive": "false"} if f.unique else None,
        "sub_module": _NULL_REF,
        "subform": None,
        "external": {"show": None, "type": None},
        "formula": None,
        "convert_mapping": {},
        "multiselectlookup": None,
        "multiuserlookup": {
            "display_label": None,
            "linking_module": _NULL_REF,
            "connected_module": _NULL_REF,
            "lookup_apiname": None,
            "api_name": None,
            "connectedfield_apiname": None,
            "connectedlookup_apiname": None,
            "id": None,
            "record_access": None,
        },
        "autonumber": {"starting_number_length": 0, "prefix": None, "suffix": None, "start_number": None},
        "auto_number": None,
        "pick_list_values": [
            {
                "colour_code": None,
                "actual_value": v,
                "type": "used",
                "id": str(int(fid) * 100 + i),
                "sequence_number": i + 1,
                "display_value": v,
            }
            for i, v in enumerate(f.pick_list)
        ],
        "crypt": {"mode": None, "status": None},
        "tooltip": {"name": "", "value": ""},
        "history_tracking": {"module": {}, "duration_configured_field": _NULL_REF},
        "association_details": {"related_field": _NULL_REF, "lookup_field": _NULL_REF},
        "allowed_modules": [],
        "additional_column": None,
        "field_label": f.label or f.api_name,
        "common.picklist": None,
        "hipaa_compliance_enabled": None,
        "hipaa_compliance": {"restricted_in_export": None, "restricted": None},
        "_update_existing_records": False,
        "number_separator": False,
        "textarea": {"type": "large"} if f.data_type == "textarea" else {},
        "static_field": False,
        "mandatory": f.mandatory,
    }


def _lookup(f: FieldDef) -> JSON | None:
    if f.data_type != "lookup":
        return None
    return {
        "display_label": f.label,
        "api_name": f.api_name,
        "query_details": {},
        "module": {"api_name": f.lookup, "id": None},
        "id": None,
        "revalidate_filter_during_edit": False,
        "show_fields": {"show_data": False, "field": _NULL_REF},
    }


def module_meta(state: SandboxState, module: ModuleDef, *, detailed: bool = False) -> JSON:
    admin = state.users[state.current_user_id]
    owner = {"name": admin["full_name"], "id": admin["id"]}
    doc: dict[str, Any] = {
        "has_more_profiles": False,
        "sub_menu_available": False,
        "common.search_supported": True,
        "deletable": module.generated_type == "custom",
        "description": None,
        "creatable": True,
        "recycle_bin_on_delete": True,
        "inventory_template_supported": False,
        "modified_time": None,
        "plural_label": module.plural_label,
        "presence_sub_menu": False,
        "triggers_supported": True,
        "id": module.id,
        "chart_view": False,
        "isBlueprintSupported": True,
        "visibility": 1,
        "visible": True,
        "convertable": module.api_name == "Leads",
        "editable": True,
        "emailTemplate_support": True,
        "email_parser_supported": False,
        "filter_supported": True,
        "show_as_tab": True,
        "web_link": None,
        "sequence_number": list(state.modules).index(module.api_name) + 1,
        "singular_label": module.singular_label,
        "viewable": True,
        "api_supported": True,
        "api_name": module.api_name,
        "quick_create": True,
        "generated_type": module.generated_type,
        "feeds_required": False,
        "scoring_supported": True,
        "webform_supported": True,
        "arguments": [],
        "module_name": module.plural_label,
        "chart_view_supported": True,
        "profile_count": 1,
        "business_card_field_limit": 5,
        "track_current_data": True,
        "modified_by": owner,
        "profiles": [{"name": "Administrator", "id": admin["profile"]["id"]}],
        "parent_module": None,
        "activity_badge": None,
        "$field_states": [],
        "business_card_fields": [],
        "per_page": 200,
        "$properties": [],
        "$on_demand_properties": [],
        "search_layout_fields": [module.display_field],
        "kanban_view_supported": True,
        "lookup_field_properties": {"fields": []},
        "kanban_view": False,
        "related_lists": [],
        "filter_status": True,
        "related_list_properties": {"sort_by": _NULL_REF, "fields": [], "sort_order": None},
        "display_field": {"api_name": module.display_field, "id": None},
        "layouts": [],
        "fields": [field_meta(module, f, i + 1) for i, f in enumerate(module.fields)] if detailed else [],
        "custom_view": custom_view(module, owner),
        "zia_view": False,
        "default_mapping_fields": [],
        "layout_associations": [],
    }
    return doc


def custom_view_id(module: ModuleDef) -> str:
    """The id of the module's one custom view, "All <plural>"."""
    return str(int(module.id) + 1)


def custom_view(module: ModuleDef, owner: JSON) -> JSON:
    return {
        "display_value": f"All {module.plural_label}",
        "system_name": "ALLVIEWS",
        "category": "public_views",
        "created_time": None,
        "modified_time": None,
        "last_accessed_time": None,
        "name": f"All {module.plural_label}",
        "created_by": owner,
        "modified_by": owner,
        "module": {"name": module.api_name, "id": module.id},
        "criteria": {"comparator": None, "field": _NULL_REF, "value": None, "group_operator": None, "group": []},
        "default": True,
        "system_defined": True,
        "locked": None,
        "favorite": None,
        "offline": False,
        "access_type": "shared",
        "shared_to": [],
        "fields": [],
        "sort_by": {"id": module.id, "api_name": "Created_Time"},
        "sort_order": None,
        "id": custom_view_id(module),
    }


def org_meta(state: SandboxState) -> JSON:
    o = state.crm_org
    return {
        "country": o["country"],
        "photo_id": None,
        "city": None,
        "description": None,
        "mc_status": False,
        "gapps_enabled": False,
        "translation_enabled": False,
        "street": None,
        "domain_name": o["domain_name"],
        "alias": None,
        "currency": o["currency"],
        "id": o["id"],
        "state": None,
        "fax": None,
        "zip": None,
        "employee_count": "10",
        "website": "https://sandbox.test",
        "currency_symbol": o["currency_symbol"],
        "mobile": None,
        "currency_locale": o["currency_locale"],
        "primary_zuid": o["primary_zuid"],
        "zia_portal_id": None,
        "time_zone": o["time_zone"],
        "zgid": o["zgid"],
        "country_code": o["country_code"],
        "deletable_org_account": False,
        "license_details": {
            "paid_expiry": "2027-01-01T00:00:00+00:00",
            "users_license_purchased": 10,
            "trial_type": None,
            "trial_expiry": None,
            "paid": True,
            "paid_type": "enterprise",
            "trial_action": "",
        },
        "hierarchy_preferences": {"type": "Role_Hierarchy", "strictly_reporting": False},
        "phone": "+1 555 0100",
        "company_name": o["company_name"],
        "privacy_settings": False,
        "primary_email": o["primary_email"],
        "iso_code": o["iso_code"],
        "hipaa_compliance_enabled": False,
        "lite_users_enabled": False,
        "max_per_page": 200,
        "ezgid": o["zgid"],
        "call_icon": "",
        "oauth_presence": True,
        "zia_zgid": 0,
        "checkin_preferences": {"restricted_event_types": None},
    }
