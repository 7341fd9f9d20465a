"""CRM custom views (/settings/custom_views?module=): each module's "All" and "My" views, as crm-oas
`custom_views.json` shapes them. Bulk read filters by a view's owner criterion (`view_filters`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.sandbox._http import json_response, state_of
from connector.sandbox.crm import MAX_PER_PAGE, _fail, _handler, int_param
from connector.sandbox.metadata import custom_view
from connector.sandbox.state import JSON, ModuleDef, SandboxState

_TRANSLATION = {
    "public_views": "Public Views",
    "other_users_views": "Other Users' Views",
    "shared_with_me": "Shared With Me",
    "created_by_me": "Created By Me",
}


def custom_views(state: SandboxState, module: ModuleDef) -> list[JSON]:
    admin = state.users[state.current_user_id]
    owner = {"name": admin["full_name"], "id": admin["id"]}
    every = custom_view(module, owner)
    mine = {
        **every,
        "display_value": f"My {module.plural_label}",
        "name": f"My {module.plural_label}",
        "system_name": "MYVIEWS",
        "default": False,
        "id": str(int(module.id) + 2),
        "criteria": {
            "comparator": "equal",
            "field": {"api_name": "Owner", "id": None},
            "value": {"id": admin["id"], "name": admin["full_name"]},
            "group_operator": None,
            "group": [],
        },
    }
    return [every, mine]


def view_filters(state: SandboxState, module: ModuleDef) -> dict[str, str | None]:
    """View id → the owner id it keeps (None: every record)."""
    every, mine = custom_views(state, module)
    return {every["id"]: None, mine["id"]: state.current_user_id}


@_handler
async def list_custom_views(request: Request) -> Response:
    state = state_of(request)
    name = request.query_params.get("module")
    if not name:
        raise _fail("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="module")
    module = state.module(name)
    if module is None:
        raise _fail("INVALID_MODULE", "the module name given seems to be invalid", param_name="module")
    per_page = int_param(request, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    page = int_param(request, "page", 1, 1)
    views = custom_views(state, module)
    chunk = views[(page - 1) * per_page : page * per_page]
    info = {
        "per_page": per_page,
        "count": len(chunk),
        "page": page,
        "more_records": len(views) > page * per_page,
        "default": views[0]["id"],
        "translation": _TRANSLATION,
    }
    return json_response({"custom_views": chunk, "info": info})


routes = [Route("/crm/v8/settings/custom_views", list_custom_views, methods=["GET"])]
