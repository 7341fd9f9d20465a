"""CRM users, org and metadata (/settings/modules, /settings/fields)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, no_content, state_of
from connector.sandbox.crm import MAX_PER_PAGE, _fail, _handler, int_param, user_of
from connector.sandbox.metadata import field_meta, module_meta, org_meta
from connector.sandbox.state import JSON, ModuleDef

USER_TYPES: dict[str, Callable[[JSON], bool]] = {
    "AllUsers": lambda u: True,
    "ActiveUsers": lambda u: u["status"] == "active",
    "DeactiveUsers": lambda u: u["status"] == "disabled",
    "ConfirmedUsers": lambda u: bool(u["confirm"]),
    "NotConfirmedUsers": lambda u: not u["confirm"],
    "DeletedUsers": lambda u: u["status"] == "deleted",
    "ActiveConfirmedUsers": lambda u: u["status"] == "active" and bool(u["confirm"]),
    "AdminUsers": lambda u: u["profile"]["name"] == "Administrator",
    "ActiveConfirmedAdmins": lambda u: u["profile"]["name"] == "Administrator" and u["status"] == "active",
}


@_handler
async def list_users(request: Request) -> Response:
    """GET /users?type=AllUsers|CurrentUser|…, paged like records."""
    state = state_of(request)
    kind = request.query_params.get("type") or "AllUsers"
    if kind == "CurrentUser":
        users: list[JSON] = [state.users[user_of(request)]]
    elif kind in USER_TYPES:
        users = [u for u in state.users.values() if USER_TYPES[kind](u)]
    else:
        raise _fail("INVALID_DATA", "invalid data", param_name="type", supported_values=[*USER_TYPES, "CurrentUser"])
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    page = int_param(request, "page", 1, 1)
    chunk = users[(page - 1) * per_page : page * per_page]
    if not chunk:
        return no_content()
    info = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": len(users) > page * per_page}
    return json_response({"users": chunk, "info": info})


@_handler
async def get_user(request: Request) -> Response:
    user = state_of(request).users.get(request.path_params["user_id"])
    if user is None:
        return no_content()
    info = {"per_page": MAX_PER_PAGE, "count": 1, "page": 1, "more_records": False}
    return json_response({"users": [user], "info": info})


@_handler
async def get_org(request: Request) -> Response:
    return json_response({"org": [org_meta(state_of(request))]})


@_handler
async def list_modules(request: Request) -> Response:
    state = state_of(request)
    return json_response({"modules": [module_meta(state, m) for m in state.modules.values()]})


@_handler
async def get_module(request: Request) -> Response:
    state = state_of(request)
    module = state.module(request.path_params["api_name"])
    if module is None:
        raise _fail("INVALID_MODULE", "the module name given seems to be invalid", resource_path_index=2)
    return json_response({"modules": [module_meta(state, module, detailed=True)]})


def module_param(request: Request) -> ModuleDef:
    """The `module` query parameter every /settings listing requires."""
    name = request.query_params.get("module")
    if not name:
        raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="module")
    module = state_of(request).module(name)
    if module is None:
        raise _fail("INVALID_MODULE", "the module name given seems to be invalid", param_name="module")
    return module


@_handler
async def list_layouts(request: Request) -> Response:
    """One active "Standard" layout per module, with every field in one section."""
    state, module = state_of(request), module_param(request)
    owner = state.user_ref(state.current_user_id)
    layout = {
        "id": str(int(module.id) + 2),
        "name": "Standard",
        "display_label": "Standard",
        "api_name": "Standard",
        "status": "active",
        "visible": True,
        "source": "crm",
        "created_by": owner,
        "modified_by": owner,
        "created_time": None,
        "modified_time": None,
        "has_more_profiles": False,
        "mode": "standard",
        "subform_properties": None,
        "show_business_card": False,
        "generated_type": "default",
        "created_for": owner,
        "convert_mapping": {
            **{m: None for m in ("Contacts", "Accounts", "Invoices", "SalesOrders")},
            "Deals": None,
        },
        "actions_allowed": {
            "edit": True,
            "rename": True,
            "clone": True,
            "downgrade": False,
            "delete": False,
            "deactivate": False,
            "set_layout_permissions": True,
        },
        "profiles": [
            {
                "default": True,
                "name": "Administrator",
                "id": state.users[state.current_user_id]["profile"]["id"],
                "_default_view": {"name": "Standard", "id": str(int(module.id) + 2), "type": "layout"},
            }
        ],
        "sections": [
            {
                "display_label": f"{module.singular_label} Information",
                "api_name": f"{module.singular_label} Information",
                "name": f"{module.singular_label} Information",
                "sequence_number": 1,
                "column_count": 2,
                "isSubformSection": False,
                "tab_traversal": "left_to_right",
                "generated_type": "default",
                "id": str(int(module.id) + 3),
                "type": "used",
                "properties": {"reorder_rows": None, "maximum_rows": None, "tooltip": None},
                "_delete": None,
                "fields": [field_meta(module, f, i + 1) for i, f in enumerate(module.fields)],
            }
        ],
    }
    return json_response({"layouts": [layout]})


@_handler
async def list_related_lists(request: Request) -> Response:
    """Notes, Attachments, and one list per module whose lookup points at this one."""
    from connector.sandbox.crm_links import related_lists  # crm_links imports this module's siblings

    state, module = state_of(request), module_param(request)
    lists: list[JSON] = []
    for name in ("Notes", "Attachments"):
        lists.append({"api_name": name, "module": {"api_name": name, "id": None}, "field": None, "name": name})
    for related, lookup in related_lists(state, module):
        lists.append(
            {
                "api_name": related.api_name,
                "module": {"api_name": related.api_name, "id": related.id},
                "field": {"api_name": lookup.api_name, "id": None},
                "name": related.plural_label,
            }
        )
    out = [
        {
            **entry,
            "id": str(int(module.id) + 10 + i),
            "display_label": entry["name"],
            "sequence_number": str(i + 1),
            "href": f"{module.api_name}/{{ID}}/{entry['api_name']}",
            "type": "default",
            "visible": True,
            "action": None,
            "customize_sort": False,
            "customize_fields": False,
            "customize_display_label": False,
            "sort_by": {"api_name": None, "id": None},
            "sort_order": None,
            "fields": [],
            "status": "visible",
        }
        for i, entry in enumerate(lists)
    ]
    return json_response({"related_lists": out})


@_handler
async def list_fields(request: Request) -> Response:
    module = module_param(request)
    return json_response({"fields": [field_meta(module, f, i + 1) for i, f in enumerate(module.fields)]})


routes = [
    Route("/crm/v8/users", list_users, methods=["GET"]),
    Route("/crm/v8/users/{user_id}", get_user, methods=["GET"]),
    Route("/crm/v8/org", get_org, methods=["GET"]),
    Route("/crm/v8/settings/modules", list_modules, methods=["GET"]),
    Route("/crm/v8/settings/modules/{api_name}", get_module, methods=["GET"]),
    Route("/crm/v8/settings/fields", list_fields, methods=["GET"]),
    Route("/crm/v8/settings/layouts", list_layouts, methods=["GET"]),
    Route("/crm/v8/settings/related_lists", list_related_lists, methods=["GET"]),
]
