"""The sandbox's whole world in memory: OAuth grants, CRM modules and records, Books entities.

Everything the HTTP layers need lives here as plain data so a test can build, inspect or persist it without a server.
Handlers run on one event loop, so no locking is done; mutate a served state only through the admin endpoints.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

JSON = dict[str, Any]

CRM_ID_BASE = 5_843_166_000_000_000_000  # 19 digits, like Zoho CRM record ids
BOOKS_ID_BASE = 460_000_000_000_000  # 15 digits, like Zoho Books entity ids
DEFAULT_CLIENT_ID = "1000.SANDBOXCLIENT"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - a published sandbox credential, not a secret
BOOKS_ORG_ID = "10234695"


# Concurrent API calls per app by CRM edition (zoho-api.md §3 Limits).
EDITION_CONCURRENCY = {"free": 5, "standard": 10, "professional": 15, "enterprise": 20, "ultimate": 25}


@dataclass
class Options:
    """Behaviour knobs, mostly for what zoho-api.md marks UNCERTAIN; defaults follow the notes."""

    # HTTP status of Accounts' JSON errors: Zoho answers them with 200 (zoho-api.md §1 marks it UNCERTAIN; the
    # SDK and the connector both read the `error` key whatever the status), so 200 is the stricter default.
    token_error_status: int = 200
    access_token_ttl: float = 3600.0
    code_ttl: float = 120.0  # web-flow grant codes
    self_client_code_ttl: float = 180.0
    token_requests_per_window: int = 10  # new access tokens per refresh token ...
    token_request_window: float = 600.0  # ... per this many seconds
    max_access_tokens_per_refresh: int = 15
    max_refresh_tokens_per_client: int = 20  # per user per client
    page_token_ttl: float = 86_400.0
    max_page_token_rows: int = 100_000
    coql_limit_comma: Literal["offset_first", "limit_first"] = "offset_first"  # `LIMIT a, b` like MySQL by default
    base_url: str | None = None  # fixed api_domain/accounts-server; by default the server's own bound address
    edition: str = "enterprise"  # CRM edition: sets the cap on concurrent calls (EDITION_CONCURRENCY)
    max_concurrent: int | None = None  # overrides the edition's cap
    bulk_read_page_rows: int = 200_000  # rows per bulk read job; more_records and next_page_token beyond
    bulk_read_polls: int = 2  # status reads a bulk read job answers ADDED / IN PROGRESS before COMPLETED
    notify_timeout: float = 3.0  # seconds a notification POST to a channel's notify_url may take (crm_watch)
    # Whether a CRM list's If-Modified-Since keeps a record modified at exactly that instant: no source says
    # (zoho-api.md §3, UNCERTAIN), so both readings can be served; clients must be right under either.
    modified_since: Literal["exclusive", "inclusive"] = "exclusive"

    def __post_init__(self) -> None:
        if self.edition not in EDITION_CONCURRENCY:
            raise ValueError(f"unknown CRM edition {self.edition!r}: use one of {sorted(EDITION_CONCURRENCY)}")
        if self.modified_since not in ("exclusive", "inclusive"):
            raise ValueError(f"modified_since must be exclusive or inclusive, not {self.modified_since!r}")

    def concurrency_limit(self) -> int:
        if self.max_concurrent is not None:
            return self.max_concurrent
        return EDITION_CONCURRENCY[self.edition]


@dataclass
class Client:
    client_id: str
    client_secret: str
    name: str = "Sandbox client"


@dataclass
class GrantCode:
    code: str
    client_id: str
    scope: str
    redirect_uri: str | None
    expires_at: float
    self_client: bool = False
    offline: bool = True  # access_type=offline: the exchange also returns a refresh token
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    user_id: str
    scope: str
    created_at: float
    revoked: bool = False
    grants: list[float] = field(default_factory=list)  # when each access token was minted, for the throttle


@dataclass
class AccessToken:
    token: str
    refresh_token: str | None
    client_id: str
    user_id: str
    scope: str
    created_at: float
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class FieldDef:
    """One CRM field; `data_type` uses Zoho's vocabulary (text, email, lookup, ownerlookup, currency, ...)."""

    api_name: str
    data_type: str
    label: str = ""
    mandatory: bool = False
    unique: bool = False
    length: int | None = None
    lookup: str | None = None  # target module of a lookup field
    read_only: bool = False
    pick_list: tuple[str, ...] = ()
    custom: bool = False


SYSTEM_FIELDS = (
    FieldDef("Owner", "ownerlookup", "Owner"),
    FieldDef("Created_By", "ownerlookup", "Created By", read_only=True),
    FieldDef("Modified_By", "ownerlookup", "Modified By", read_only=True),
    FieldDef("Created_Time", "datetime", "Created Time", read_only=True),
    FieldDef("Modified_Time", "datetime", "Modified Time", read_only=True),
)


@dataclass
class ModuleDef:
    api_name: str
    id: str
    singular_label: str
    plural_label: str
    fields: list[FieldDef]
    display_field: str
    duplicate_check_fields: tuple[str, ...] = ()
    generated_type: str = "default"

    def field(self, api_name: str) -> FieldDef | None:
        for f in self.fields:
            if f.api_name == api_name:
                return f
        return None


@dataclass
class Attachment:
    id: str
    module: str
    record_id: str
    file_name: str | None
    content: bytes
    content_type: str
    link_url: str | None
    created_time: str
    owner_id: str


@dataclass
class Subscription:
    """One notification channel's subscription to one module, as Zoho lists it (GET /actions/watch): a channel
    whose events name two modules is two subscriptions sharing the channel id (connector/sandbox/watch.py)."""

    channel_id: str
    module: str
    resource_id: str  # the module's id
    resource_uri: str  # the module's URL on the API domain, e.g. https://www.zohoapis.com/crm/v8/Leads
    operations: list[str]  # of "edit", "create", "delete", in that order
    notify_url: str
    token: str | None
    expires_at: float
    notify_on_related_action: bool = True  # Zoho's default
    return_affected_field_values: bool = False
    notification_condition: list[JSON] | None = None  # this module's conditions, normalized as Zoho lists them


@dataclass
class PageToken:
    module: str
    sort_by: str
    sort_order: str
    offset: int
    expires_at: float


class SandboxState:
    """In-memory Zoho: build one per test, or load/save it as JSON with `load`/`save`."""

    def __init__(self, *, options: Options | None = None, seed: bool = True) -> None:
        self.options = options or Options()
        self.clients: dict[str, Client] = {}
        self.users: dict[str, JSON] = {}
        self.current_user_id = ""
        self.codes: dict[str, GrantCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.modules: dict[str, ModuleDef] = {}
        self.records: dict[str, dict[str, JSON]] = {}
        self.attachments: dict[str, Attachment] = {}
        self.notes: dict[str, JSON] = {}
        self.deleted: dict[str, list[JSON]] = {}  # module -> deleted-record entries, newest last (GET /{m}/deleted)
        self.page_tokens: dict[str, PageToken] = {}
        self.watch: dict[str, dict[str, Subscription]] = {}  # channel id -> module -> subscription
        self.crm_org: JSON = {}
        # Finance organizations by app ("books", "inventory", …), each as that app lists it; records live in
        # `books` by organization id, so an organization two apps share shares its records.
        self.finance_orgs: dict[str, dict[str, JSON]] = {}
        self.books: dict[str, dict[str, dict[str, JSON]]] = {}  # org id -> collection -> entity id -> entity
        self.store: dict[str, list[JSON]] = {}  # Partner Store kind -> records in list order
        self.store_page_headers: Literal["more", "none"] = "more"  # see connector/sandbox/store.py
        self.store_order: Literal["oldest_first", "newest_first"] = "oldest_first"
        self.counter = 0
        self._versions: dict[str, int] = {}
        self._sorted: dict[tuple[str, str, str], tuple[int, list[JSON]]] = {}
        self._kept: dict[tuple[Any, ...], tuple[int, list[JSON]]] = {}
        # (module, field) -> (version, value -> id): unique-value indexes kept between writes (records.Batch)
        self.value_indexes: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
        if seed:
            from connector.sandbox.seed import seed_defaults

            seed_defaults(self)
            from connector.sandbox import store

            store.seed_defaults(self)

    # ids ---------------------------------------------------------------------------------------------------------

    def new_crm_id(self) -> str:
        self.counter += 1
        return str(CRM_ID_BASE + self.counter)

    @property
    def books_orgs(self) -> dict[str, JSON]:
        return self.finance_orgs.setdefault("books", {})

    def new_books_id(self) -> str:
        self.counter += 1
        return str(BOOKS_ID_BASE + self.counter)

    # CRM -----------------------------------------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str, name: str = "Sandbox client") -> Client:
        client = Client(client_id, client_secret, name)
        self.clients[client_id] = client
        return client

    def add_module(
        self,
        api_name: str,
        fields: list[FieldDef] | None = None,
        *,
        singular_label: str | None = None,
        display_field: str | None = None,
        duplicate_check_fields: tuple[str, ...] = (),
        custom: bool = True,
    ) -> ModuleDef:
        """Define a module; without `fields` it gets a mandatory `Name` and an `Email`, like a new custom module."""
        own = list(fields) if fields is not None else [FieldDef("Name", "text", "Name", mandatory=True, length=120)]
        if fields is None:
            own.append(FieldDef("Email", "email", "Email", length=100, custom=True))
        module = ModuleDef(
            api_name=api_name,
            id=self.new_crm_id(),
            singular_label=singular_label or api_name.rstrip("s"),
            plural_label=api_name.replace("_", " "),
            fields=[*own, *(f for f in SYSTEM_FIELDS if all(o.api_name != f.api_name for o in own))],
            display_field=display_field or own[0].api_name,
            duplicate_check_fields=duplicate_check_fields,
            generated_type="custom" if custom else "default",
        )
        self.modules[api_name] = module
        self.records.setdefault(api_name, {})
        return module

    def module(self, name: str) -> ModuleDef | None:
        """Module by API name; Zoho matches module names case-insensitively."""
        if name in self.modules:
            return self.modules[name]
        lowered = name.lower()
        return next((m for key, m in self.modules.items() if key.lower() == lowered), None)

    def touch(self, module: str) -> None:
        """Invalidate cached sort orders after a write."""
        self._versions[module] = self._versions.get(module, 0) + 1

    def version(self, module: str) -> int:
        """Changes with every write to the module (`touch`): what caches of its records are checked against."""
        return self._versions.get(module, 0)

    def sorted_records(self, module: str, sort_by: str, sort_order: str) -> list[JSON]:
        """Records in list order, cached per write so deep page_token walks stay linear."""
        version = self._versions.get(module, 0)
        key = (module, sort_by, sort_order)
        cached = self._sorted.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = list(self.records.get(module, {}).values())  # ids grow, so insertion order is id order
        if sort_by != "id":
            rows.sort(key=lambda r: (str(r.get(sort_by) or ""), int(r["id"])))
        if sort_order == "desc":
            rows.reverse()
        self._sorted[key] = (version, rows)
        return rows

    def kept_records(
        self, module: str, sort_by: str, sort_order: str, view: tuple[Any, ...], keep: Callable[[JSON], bool]
    ) -> list[JSON]:
        """sorted_records narrowed by `keep`, which `view` names (the filter's parameters), cached the same way."""
        version = self._versions.get(module, 0)
        key = (module, sort_by, sort_order, *view)
        cached = self._kept.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = [r for r in self.sorted_records(module, sort_by, sort_order) if keep(r)]
        self._kept[key] = (version, rows)
        return rows

    def user_ref(self, user_id: str) -> JSON:
        user = self.users[user_id]
        return {"name": user["full_name"], "id": user["id"], "email": user["email"]}

    # persistence ---------------------------------------------------------------------------------------------------

    def to_dict(self) -> JSON:
        return {
            "options": asdict(self.options),
            "clients": [asdict(c) for c in self.clients.values()],
            "users": self.users,
            "current_user_id": self.current_user_id,
            "codes": [asdict(c) for c in self.codes.values()],
            "refresh_tokens": [asdict(t) for t in self.refresh_tokens.values()],
            "access_tokens": [asdict(t) for t in self.access_tokens.values()],
            "modules": [_module_to_dict(m) for m in self.modules.values()],
            "records": self.records,
            "attachments": [
                {**asdict(a), "content": base64.b64encode(a.content).decode()} for a in self.attachments.values()
            ],
            "notes": self.notes,
            "watch": [asdict(s) for subs in self.watch.values() for s in subs.values()],
            "crm_org": self.crm_org,
            "finance_orgs": self.finance_orgs,
            "books": self.books,
            "store": self.store,
            "store_page_headers": self.store_page_headers,
            "store_order": self.store_order,
            "counter": self.counter,
        }

    @classmethod
    def from_dict(cls, data: JSON) -> SandboxState:
        state = cls(options=_dataclass_from(Options, data.get("options", {})), seed=False)
        state.clients = {c["client_id"]: Client(**c) for c in data["clients"]}
        state.users = data["users"]
        state.current_user_id = data["current_user_id"]
        state.codes = {c["code"]: GrantCode(**c) for c in data["codes"]}
        state.refresh_tokens = {t["token"]: RefreshToken(**t) for t in data["refresh_tokens"]}
        state.access_tokens = {t["token"]: AccessToken(**t) for t in data["access_tokens"]}
        state.modules = {m["api_name"]: _module_from_dict(m) for m in data["modules"]}
        state.records = data["records"]
        state.attachments = {
            a["id"]: Attachment(**{**a, "content": base64.b64decode(a["content"])}) for a in data["attachments"]
        }
        state.notes = data["notes"]
        for sub in data.get("watch", []):  # files saved before notifications have none
            state.watch.setdefault(sub["channel_id"], {})[sub["module"]] = Subscription(**sub)
        state.crm_org = data["crm_org"]
        state.finance_orgs = data["finance_orgs"] if "finance_orgs" in data else {"books": data["books_orgs"]}
        state.books = data["books"]
        state.store = data.get("store", {})  # files saved before the Partner Store have none
        state.store_page_headers = data.get("store_page_headers", "more")
        state.store_order = data.get("store_order", "oldest_first")
        state.counter = data["counter"]
        return state

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically so a crash mid-save never leaves a half file behind."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh)
        Path(tmp).replace(target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SandboxState:
        with Path(path).open(encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    @classmethod
    def load_or_new(cls, path: str | os.PathLike[str] | None) -> SandboxState:
        if path is not None and Path(path).exists():
            return cls.load(path)
        return cls()


def _module_to_dict(module: ModuleDef) -> JSON:
    data = asdict(module)
    data["fields"] = [asdict(f) for f in module.fields]
    return data


def _module_from_dict(data: JSON) -> ModuleDef:
    defs = [FieldDef(**{**f, "pick_list": tuple(f["pick_list"])}) for f in data["fields"]]
    return ModuleDef(**{**data, "fields": defs, "duplicate_check_fields": tuple(data["duplicate_check_fields"])})


def _dataclass_from(cls: type[Options], data: JSON) -> Options:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
