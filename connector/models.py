"""The shape of every data file, defined once: manifest.yaml, a product, a connection, the region table, an action.

These classes are the single source of the data files' shape. When the manifest bundle is built, pydantic
validates each file against them (`validator(...)`), and `python -m connector.models` writes the JSON meta-schemas
in `schemas/meta/` from them, for engines in other languages. At run time they are plain frozen dataclasses made
from the cached bundle, so a run never imports pydantic: the annotations stay unevaluated strings until pydantic
reads them at build time (that is why `Field` is imported for type checking only).

Names of strategies (envelope, host, organization convention, pager, webhook channel, field schema) are enums
whose values are the names registered in `connector.strategies` when a validator is built: the models refuse any
other name, the meta-schemas enumerate the built-in ones, and a new product that registers its own strategy
extends the enum without a change here.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

if sys.version_info >= (3, 12):
    from typing import NotRequired, TypedDict
else:  # pydantic reads TypedDicts from typing_extensions on Python < 3.12
    from typing import NotRequired

    from typing_extensions import TypedDict

if TYPE_CHECKING:
    from pydantic import Field, TypeAdapter

    Path = str  # a data file's path, relative to the manifest (the pattern is in _build_time_names)
    Expression = Any  # a value expression of the template language
    # Strategy names (connector.strategies): at build time, Literal[every registered name] (see _build_time_names).
    EnvelopeName = str
    HostName = str
    ConventionName = str
    PagerName = str
    ChannelName = str
    FieldSchemaName = str

__all__ = [
    "DEFAULT_TIME_FORMAT",
    "ROLE_TYPES",
    "Action",
    "ActionFile",
    "Batch",
    "ConnectionDef",
    "ConnectionFile",
    "Heavy",
    "InputOptions",
    "Job",
    "Manifest",
    "ManifestFile",
    "Poll",
    "PollCursor",
    "Product",
    "ProductFile",
    "RegionsFile",
    "Role",
    "Trigger",
    "TriggerFile",
    "Webhook",
    "input_meta_schema",
    "meta_schemas",
    "validator",
]

_STRICT: dict[str, Any] = {"extra": "forbid", "use_attribute_docstrings": True}
# Definitions are read-only by convention, not frozen: frozen (and eq) dataclasses cost milliseconds of cold start
# to create, which every `zoho-connector run` would pay.

Safety = Literal["read", "write", "idempotent", "by_method"]
# What an input means to the runtime (its `x-role` in the input schema), with the JSON type it must have.
Role = Literal[
    "debug",
    "fetch_all",
    "timeout_ms",
    "max_retries",
    "retry_delay_ms",
    "exponential_backoff",
    "retry_all_errors",
    "response_type",
    "page",
    "page_size",
    "page_cursor",
    "organization_id",
]
# Keyed by Role (mypy refuses a name outside it); a test checks that every Role has its type here.
ROLE_TYPES: dict[Role, str] = {
    "debug": "boolean",
    "fetch_all": "boolean",
    "timeout_ms": "integer",
    "max_retries": "integer",
    "retry_delay_ms": "integer",
    "exponential_backoff": "boolean",
    "retry_all_errors": "boolean",
    "response_type": "string",
    "page": "integer",
    "page_size": "integer",
    "page_cursor": "string",
    "organization_id": "string",
}


# --- products --------------------------------------------------------------------------------------------------


class Discovery(TypedDict):
    path: Annotated[str, Field(pattern=r"^/")]
    """Path under the product's base that lists the account's organizations."""
    list: str
    """Member of that answer holding the list."""
    id: str
    """Member of an entry holding its id."""
    default: NotRequired[str]
    """Member of an entry that is true for the default organization (else the first is taken)."""


class Organization(TypedDict):
    convention: ConventionName
    """How calls name the organization: a name registered in connector.strategies.ORGANIZATIONS."""
    name: Annotated[str, Field(min_length=1)]
    """The query parameter or header that carries the organization id."""
    discover: NotRequired[Discovery]
    """How to find the default organization when neither the action nor the connection names one."""


class Heavy(TypedDict):
    """Calls the product's API counts against a lower concurrency cap of their own (Zoho's sub-concurrency for heavy
    APIs such as COQL, bulk and mass operations, convert and mail)."""

    paths: Annotated[list[Annotated[str, Field(pattern=r"^/[^?#]*$")]], Field(min_length=1)]
    """URL paths on the API host, as shell patterns (`*` matches any text, `/` included), e.g. `/crm/v8/coql`."""
    max_concurrency: Annotated[int, Field(ge=1)]
    """How many such calls one account may have in flight at once."""


@dataclass(kw_only=True, eq=False)
class ProductFile:
    """One Zoho product in manifest.yaml: where its API lives and which strategies read it."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT
    label: Annotated[str, Field(min_length=1)]
    """Shown to users, e.g. "Zoho Books"."""
    base_path: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9_/.-]*[A-Za-z0-9])?$")]
    """API base under the host its rule picks, e.g. /books/v3; empty when that host is the API's whole root (the
    Partner Store's store.zoho.eu/api/v1/partner)."""
    envelope: EnvelopeName
    """How answers are wrapped: a name registered in connector.strategies.ENVELOPES."""
    host: HostName = "api"
    """Which API domain serves it: a name registered in connector.strategies.HOSTS."""
    organization: Organization | None = None
    """How calls name the organization, for products with several per account (Books, Inventory, …)."""
    alternate_bases: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9_/.-]*[A-Za-z0-9]$")]] = field(
        default_factory=list
    )
    """Older bases the product still answers on (Billing's /subscriptions/v1): a rendered path that starts with one
    of them is sent from the API domain's root as written, not under base_path."""
    heavy: Heavy | None = None
    """Calls with a concurrency cap of their own, held in their own slots of the account (see connector/_limits.py)."""


@dataclass(kw_only=True, eq=False)
class Product(ProductFile):
    key: str


# --- connections ---------------------------------------------------------------------------------------------


class OAuth(TypedDict):
    authorize_path: Annotated[str, Field(pattern=r"^/")]
    token_path: Annotated[str, Field(pattern=r"^/")]
    revoke_path: Annotated[str, Field(pattern=r"^/")]
    authorization_header: Annotated[str, Field(min_length=1)]
    """The scheme word before the access token in the Authorization header."""


@dataclass(kw_only=True, eq=False)
class ConnectionFile:
    """A connection kind: its inputs' schema, its region table and its OAuth endpoints."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT
    key: Annotated[str, Field(pattern=r"^[a-z][A-Za-z0-9]*$")]
    label: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    inputs: Path
    """The connection's input JSON Schema."""
    regions: Path
    """The region table (connections/regions.yaml)."""
    oauth: OAuth
    editions: Annotated[dict[str, Annotated[int, Field(ge=1)]], Field(min_length=1)]
    """The account plans the connection's `edition` input names (its enum), each with how many calls it may run at
    once: the default of `max_concurrency`."""


class Region(TypedDict):
    label: Annotated[str, Field(min_length=1)]
    accounts: Annotated[str, Field(pattern=r"^https://")]
    api: Annotated[str, Field(pattern=r"^https://")]
    upload: NotRequired[Annotated[str, Field(pattern=r"^https://")]]
    store: NotRequired[Annotated[str, Field(pattern=r"^https://[^?#]+[^/?#]$")]]
    """The Partner Store API's root, path included (https://store.zoho.eu/api/v1/partner)."""
    accounts_entry: NotRequired[bool]
    """The accounts server is the multi-DC entry point: a login started there may be issued by another region's
    accounts server, which then refreshes the token."""
    aliases: NotRequired[list[str]]


@dataclass(kw_only=True, eq=False)
class RegionsFile:
    """Zoho's data centres, and the first host label of each CRM environment."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT
    environments: dict[str, str]
    regions: Annotated[dict[str, Region], Field(min_length=1)]


@dataclass(kw_only=True, eq=False)
class ConnectionDef:
    key: str
    label: str
    description: str
    input_schema: dict[str, Any]
    regions: dict[str, Region]
    environments: dict[str, str]
    oauth: OAuth
    editions: dict[str, int]


# --- actions -------------------------------------------------------------------------------------------------


class Request(TypedDict):
    method: Annotated[str, Field(pattern=r"^(GET|POST|PUT|PATCH|DELETE|\{[A-Za-z_][A-Za-z0-9_]*\})$")]
    path: Annotated[str, Field(pattern=r"^[\[/{]")]
    """Path template under the product base: {name} is one escaped segment, {+name} may hold slashes, [ … ] is
    sent only when all its inputs are given."""
    query: NotRequired[Expression]
    headers: NotRequired[Expression]
    body: NotRequired[Expression]
    form: NotRequired[Expression]
    files: NotRequired[Expression]
    json_form_field: NotRequired[Annotated[str, Field(min_length=1)]]
    """The form field that carries `body` as compact JSON when a form or files are sent too (the API's own name
    for it): without it, a request may not send a JSON body with a form or files."""


class Pagination(TypedDict):
    pager: PagerName
    """A name registered in connector.strategies.PAGERS."""
    records: NotRequired[str]
    """Member of the answer holding the records; default: the only list-valued member."""
    max_records: NotRequired[Annotated[int, Field(ge=1)]]
    """The most records the endpoint serves to one walk (a search capped at 2,000, say): a Fetch All that reaches
    it while more remain raises PaginationError (MAX_RECORDS) instead of returning a silently truncated answer."""


class Batch(TypedDict):
    input: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    """The required list input that is sent in chunks: each call renders the request with this input holding one
    chunk, so the request template stays as it is for a single call."""
    size: Annotated[int, Field(ge=1)]
    """Items per call: the API's maximum."""
    results: NotRequired[str]
    """Member of an answer holding one result per item, in the items' order; the product's envelope reads it."""
    item_id: NotRequired[str]
    """Member of an input item holding its id, reported for items the answer says nothing about (an item that is
    text or a number is its own id)."""


class Job(TypedDict):
    """An asynchronous export: the action's request creates a job; the runtime polls it, downloads its result file
    and streams the records in it (connector._jobs). Paths are dotted (`data.0.details.id`)."""

    id: str
    """Where the created job's id is in the create answer."""
    status: Annotated[str, Field(pattern=r"^/.*\{id\}")]
    """Path under the product base that reports the job, with {id}."""
    state: str
    """Where the job's state is in the status answer."""
    done: Annotated[list[str], Field(min_length=1)]
    """States meaning the result is ready."""
    failed: list[str]
    """States meaning the job failed."""
    result: Annotated[str, Field(pattern=r"^/.*\{id\}")]
    """Path under the product base that downloads the result file, with {id}."""
    format: Literal["zip_csv"]
    """What the result file is: a ZIP holding one CSV with a header row."""
    records: Annotated[str, Field(min_length=1)]
    """Member of the action's answer that holds the rows, as the product's own lists name it (e.g. `data`)."""
    summary: Annotated[str, Field(min_length=1)]
    """Member of the action's answer that says what the walk did: `{"count": rows, "jobs": [job ids]}`."""
    more: NotRequired[str]
    """Where the status answer says more records need another job."""
    next_cursor: NotRequired[str]
    """Where the status answer holds the cursor that starts the next job."""
    cursor_input: NotRequired[str]
    """The input that carries that cursor into the next job's request."""
    poll_seconds: NotRequired[Annotated[float, Field(gt=0)]]
    """The first wait between status reads; doubled after each read (default 1)."""
    poll_max_seconds: NotRequired[Annotated[float, Field(gt=0)]]
    """The longest wait between status reads (default 30)."""
    timeout_seconds: NotRequired[Annotated[float, Field(gt=0)]]
    """How long a job may take before the walk fails (default 3600)."""


class Result(TypedDict):
    when_empty: NotRequired[Any]
    """The data returned when Zoho answers 204 No Content."""
    empty_is_not_found: NotRequired[bool]
    """An empty answer means the record does not exist: raise NotFoundError (fetching one record by id)."""
    output: NotRequired[Any]
    """The action's data rebuilt from Zoho's answer: a value whose `${answer.…}` references (with `?`, `$map` and
    `$json` as in automation inputs) name parts of the answer; see docs/template-language.md, "Output"."""


@dataclass(kw_only=True, eq=False)
class ActionFile:
    """One action: what it is, its inputs' schema, the HTTP request built from them, pagination and result."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT
    key: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$", examples=["crmGetRecord"])]
    label: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    product: str
    """A key of the manifest's products."""
    connection: str
    """The key of a connection listed in the manifest."""
    inputs: Annotated[str, Field(pattern=r"^schemas/.+\.json$")]
    """Path of the input JSON Schema, relative to the manifest."""
    safety: Safety
    """read and idempotent calls retry transient failures; write calls are re-sent only when the request certainly
    did not reach Zoho; by_method decides from the HTTP method."""
    request: Request
    example_output: dict[str, Any]
    """What the action returns, as shown to users ({"data": …})."""
    hook: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")] | None = None
    """Name of a Python hook in connector.hooks, for what data cannot express."""
    pagination: Pagination | None = None
    batch: Batch | None = None
    """Many items in one action: the list input is sent in chunks, concurrently up to the connection's
    concurrency cap, and the action returns one result per item, in order (connector/_batch.py)."""
    job: Job | None = None
    """An asynchronous export job: see Job."""
    result: Result = field(default_factory=lambda: Result())


@dataclass(kw_only=True, eq=False)
class Action(ActionFile):
    input_schema: dict[str, Any]  # standalone: every $ref inlined
    file: str
    roles: dict[str, str]  # input name by role: the runner's controls

    def inputs_with_role(self, role: str) -> str | None:
        return self.roles.get(role)


# --- triggers: what starts an automation -----------------------------------------------------------------------

DEFAULT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S+00:00"  # ISO 8601 in UTC, with a colon in the offset


class PollCursor(TypedDict):
    """How a poll finds what changed since the last one: a timestamp cursor plus the ids seen at that exact
    timestamp, so records sharing one second are neither lost nor repeated (connector/_poll.py)."""

    field: str
    """Member of a record holding the timestamp the cursor follows (e.g. Modified_Time)."""
    order: Literal["ascending", "descending"]
    """How the listed records are sorted by that field. ascending: a request starts again from the cursor through
    `since_input` (keyset) whenever a page moved it, so records changed during a poll are never skipped (a group
    sharing one timestamp that fills more than a page is read twice, since pages are offsets); descending: newest
    first, page after page, until the records are older than the cursor."""
    since_input: NotRequired[str]
    """The listing action's input that keeps only records changed at or after a time (required for ascending).
    Whether the API counts the instant itself is not assumed: the poll asks from one second earlier."""
    id: NotRequired[str]
    """Member of a record holding its id (default: id)."""
    id_input: NotRequired[str]
    """A trigger input naming the kind of record listed, when the id member depends on it (Books: invoices carry
    invoice_id): the member is id_members[value], or else the value's last path segment in the singular (a
    trailing s dropped) with `_id`."""
    id_members: NotRequired[dict[str, str]]
    """The id member of the kinds the singular rule gets wrong (taxes: tax_id, chartofaccounts: account_id)."""
    format: NotRequired[Annotated[str, Field(pattern=r"%S")]]
    """How the API writes a timestamp, as a strftime pattern applied in UTC (default DEFAULT_TIME_FORMAT):
    the first poll's cursor ("now", or the `since` input) and every since_input value are written this way."""
    fields_input: NotRequired[str]
    """The listing action's input naming the members a listed record carries (an API that returns only the fields
    asked for): the poll adds the id and the cursor's field to what its inputs put there."""


class ListSettle(TypedDict):
    field: str
    """Member of a record holding its date (ISO 8601 date or date-time)."""
    days: Expression
    """A record is handed out once that date is before the UTC day this many days ago (0: before today). A number
    or {$input: name}."""


class ListWatch(TypedDict):
    field: NotRequired[str]
    """Member whose value says a handed-out record may still change; without it, every record is watched."""
    values: NotRequired[list[str]]
    """The values of `field` that keep a record watched."""


class ListPollSpec(TypedDict):
    """A list with no filter and no sort (connector/_listpoll.py): the poll finds where the records it handed out
    sit in the list, in either order it may grow, and hands out what is new; `settle` holds recent records back,
    `watch` hands out again watched records that changed."""

    id: NotRequired[str]
    """Member of a record holding its id (default: id)."""
    page_size: NotRequired[Annotated[int, Field(ge=1, le=1000)]]
    """Records per page asked for (default 200): positions in the list are counted in these pages."""
    window: NotRequired[Expression]
    """The most records one poll hands out (default 200); a poll says `more` when the pass is not over. A number or
    {$input: name}."""
    settle: NotRequired[ListSettle]
    watch: NotRequired[ListWatch]


class Poll(TypedDict):
    action: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]
    """A read action with pagination that lists the records."""
    inputs: Expression
    """The listing action's inputs, from the trigger's (template language); the cursor adds its own."""
    cursor: NotRequired[PollCursor]
    """A timestamp cursor (for a list that can be sorted or filtered by time); or `list`, not both."""
    list: NotRequired[ListPollSpec]
    """A list with neither filter nor sort; or `cursor`, not both."""
    start_input: NotRequired[str]
    """The trigger's input (an ISO 8601 date-time) where the first poll starts; without it, the first poll starts
    now."""


class Webhook(TypedDict):
    channel: ChannelName
    """A name registered in connector.strategies.CHANNELS: how a channel is asked for and how a callback reads."""
    subscribe: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]
    """The action that opens a channel."""
    renew: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]
    """The action that extends a channel's life (the same inputs as subscribe)."""
    unsubscribe: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]
    """The action that closes a channel."""
    fetch: NotRequired[Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]]
    """A read action that fetches one changed record (for the trigger's fetch-records option)."""
    lifetime_seconds: Annotated[int, Field(ge=60)]
    """How long a channel is asked to live."""
    renew_before_seconds: Annotated[int, Field(ge=1)]
    """Renew a channel this long before it expires."""


@dataclass(kw_only=True, eq=False)
class TriggerFile:
    """One trigger: an event source an automation starts from, with inputs like an action's."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT
    key: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$", examples=["crmNewRecords"])]
    label: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    kind: Literal["poll", "webhook"]
    product: str
    """A key of the manifest's products."""
    connection: str
    """The key of a connection listed in the manifest."""
    inputs: Annotated[str, Field(pattern=r"^schemas/.+\.json$")]
    """Path of the input JSON Schema, relative to the manifest."""
    poll: Poll | None = None
    """For kind poll: what to list and the cursor that follows it."""
    webhook: Webhook | None = None
    """For kind webhook: the channel and the actions that manage it."""
    example_output: dict[str, Any]
    """One event or record as the trigger hands it out."""


@dataclass(kw_only=True, eq=False)
class Trigger(TriggerFile):
    input_schema: dict[str, Any]  # standalone: every $ref inlined
    file: str


# TypedDicts take pydantic's settings as a class attribute that must not be one of their keys.
# --- dynamic inputs: `x-options` in an input schema ---------------------------------------------------------


class EntryOptions(TypedDict):
    """Choices for the value under one key of an object input: a picklist field's values."""

    list: str
    """Member of the chosen entry holding the choices (dotted)."""
    value: str
    label: str


class LookupOptions(TypedDict):
    """One input of the metadata action looked up in another metadata answer first: the entry whose members equal
    this action's inputs (`match`) gives the value (e.g. a related list's name → the module it lists)."""

    action: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]
    """The key of a read action whose answer holds the entries."""
    list: str
    """Where the entries are in that action's answer (dotted)."""
    match: Annotated[dict[str, str], Field(min_length=1)]
    """Member of an entry (dotted) → the name of this action's input it must equal."""
    value: str
    """Member of the matched entry (dotted) that is fed to the metadata action."""
    inputs: NotRequired[dict[str, str]]
    """That action's input → the name of this action's input that feeds it."""
    constants: NotRequired[dict[str, Any]]
    """Fixed inputs of that action."""


class InputOptions(TypedDict):
    """`x-options` on an input: where its choices come from, so that a form offers lists, not typing.

    The choices are the entries of a metadata action's answer (`list`), each giving a `value` and a `label`;
    `inputs` says which of this action's inputs the metadata action takes (the choices depend on them)."""

    action: Annotated[str, Field(pattern=r"^[a-z]+[A-Z][A-Za-z0-9]*$")]
    """The key of a read action that lists the choices."""
    list: str
    """Where the entries are in that action's answer (dotted, e.g. `fields`)."""
    value: str
    """Member of an entry that is the value to use."""
    label: str
    """Member of an entry shown to users."""
    inputs: NotRequired[dict[str, str]]
    """The metadata action's input → the name of this action's input that feeds it."""
    constants: NotRequired[dict[str, Any]]
    """Fixed inputs of the metadata action (e.g. a fixed module)."""
    lookups: NotRequired[dict[str, LookupOptions]]
    """Inputs of the metadata action found through another metadata action, by its input name."""
    where: NotRequired[dict[str, Any]]
    """Keep only entries whose members have these values."""
    applies: NotRequired[Literal["value", "items", "keys", "item_keys"]]
    """What the choices are: the input's value, its items (a list), its keys (an object or key/value list), or the
    keys of its items (a list of objects). Default: from the input's type."""
    entry: NotRequired[EntryOptions]
    """Choices for the value under one key (`options(…, "fieldValues/Lead_Status")`)."""
    schema: NotRequired[FieldSchemaName]
    """A name in connector.strategies.FIELD_SCHEMAS: an entry as a JSON Schema, for `describe` to expand the
    input into the real fields."""
    required: NotRequired[bool]
    """`describe` marks the entries the schema strategy calls mandatory as required keys (creating, not updating)."""


for _typed in (
    Discovery,
    Organization,
    OAuth,
    Region,
    Request,
    Pagination,
    Batch,
    Job,
    Result,
    PollCursor,
    Poll,
    Webhook,
    EntryOptions,
    LookupOptions,
    InputOptions,
):
    _typed.__pydantic_config__ = _STRICT  # type: ignore[union-attr]


# --- the manifest --------------------------------------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class ManifestFile:
    """manifest.yaml: the component, its connections, its products and the index of its actions."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT
    key: Annotated[str, Field(pattern=r"^[a-z][a-zA-Z0-9]*$", examples=["zoho"])]
    label: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+")]
    connections: Annotated[list[Path], Field(min_length=1)]
    products: Annotated[dict[str, ProductFile], Field(min_length=1)]
    actions: list[Path]
    triggers: list[Path] = field(default_factory=list)
    automations: list[Path] = field(default_factory=list)
    """Automation files shipped with the component (schemas/automation.json), checked at load time."""


@dataclass(eq=False)
class Manifest:
    key: str
    label: str
    description: str
    version: str
    root: Any  # pathlib.Path
    products: dict[str, Product]
    connections: dict[str, ConnectionDef]
    actions: dict[str, Action]
    triggers: dict[str, Trigger] = field(default_factory=dict)
    automations: dict[str, str] = field(default_factory=dict)  # shipped automation name → file, relative to root

    def action(self, key: str) -> Action:
        try:
            return self.actions[key]
        except KeyError:
            from difflib import get_close_matches

            near = get_close_matches(key, list(self.actions), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else "; `zoho-connector actions` lists them"
            raise KeyError(f"unknown action {key!r}{hint}") from None

    def trigger(self, key: str) -> Trigger:
        try:
            return self.triggers[key]
        except KeyError:
            from difflib import get_close_matches

            near = get_close_matches(key, list(self.triggers), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else "; `zoho-connector triggers` lists them"
            raise KeyError(f"unknown trigger {key!r}{hint}") from None


# --- build time only -----------------------------------------------------------------------------------------

FILE_KINDS: dict[str, type] = {
    "manifest": ManifestFile,
    "connection": ConnectionFile,
    "regions": RegionsFile,
    "action": ActionFile,
    "trigger": TriggerFile,
    "options": InputOptions,
}


# The annotation of each kind of strategy name, by the registry's kind (connector.strategies.registry()).
STRATEGY_NAMES = {
    "EnvelopeName": "envelope",
    "HostName": "host",
    "ConventionName": "organization",
    "PagerName": "pager",
    "ChannelName": "channel",
    "FieldSchemaName": "field_schema",
}


def validator(kind: str) -> TypeAdapter[Any]:
    """A pydantic validator for one kind of data file (imports pydantic: build time only), its strategy-name enums
    being the names registered now."""
    from connector.strategies import registry

    return _validator(kind, _names(registry()))


def _names(registered: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((kind, tuple(registered[kind])) for kind in sorted(set(STRATEGY_NAMES.values())))


_build_lock = threading.Lock()


@cache
def _validator(kind: str, names: tuple[tuple[str, tuple[str, ...]], ...]) -> TypeAdapter[Any]:
    """Built once per kind and set of registered names: building one reads the models' source for their
    docstrings, which takes tens of milliseconds."""
    from pydantic import TypeAdapter

    with _build_lock:  # the annotations are resolved from this module's globals, set for these names
        globals().update(_build_time_names(dict(names)))
        return TypeAdapter(FILE_KINDS[kind])


def _enum(schema: dict[str, Any]) -> None:
    """A strategy name is an enum even while one strategy of its kind is registered (pydantic writes `const`)."""
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]


def _build_time_names(names: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The names the string annotations above use that exist only when pydantic is loaded."""
    from pydantic import Field

    return {
        "Field": Field,
        **{
            annotation: Annotated[Literal[names[kind]], Field(json_schema_extra=_enum)]
            for annotation, kind in STRATEGY_NAMES.items()
        },
        "Path": Annotated[
            str,
            Field(
                pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*\.(yaml|yml|json)$",
                examples=["actions/widgets/get-widget.yaml"],
            ),
        ],
        "Expression": Annotated[
            Any,
            Field(
                description="A value expression: a literal, {$input: name} (optionally with $join or $translate), "
                "{$merge: [...]}, {$files: ..., $names: ...}, or an object/list of expressions. "
                "See docs/template-language.md."
            ),
        ],
    }


# The x- keywords an input may carry besides JSON Schema's own, with what they hold. Roles are the enum of Role.
INPUT_GROUPS = ("advanced",)
INPUT_WIDGETS = ("code", "data", "file", "textarea")
INPUT_COLLECTIONS = ("valuelist", "keyvaluelist")


def input_meta_schema() -> dict[str, Any]:
    """The meta-schema of an action's or trigger's input schema: the x- keywords of its inputs (`properties` and
    shared `$defs`), with x-role enumerated from Role. The loader checks the rest (one input per role, the role's
    type, x-options against options.schema.json)."""
    from typing import get_args

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Input schema",
        "description": "An action's or trigger's input JSON Schema (schemas/actions/**, schemas/triggers/**, "
        "schemas/common.json): JSON Schema with the connector's x- keywords on each input.",
        "type": "object",
        "properties": {
            "properties": {"type": "object", "additionalProperties": {"$ref": "#/$defs/input"}},
            "$defs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/input"}},
            "x-anyOf-message": {
                "type": "string",
                "minLength": 1,
                "description": "The message when none of an anyOf's alternatives is given.",
            },
        },
        "$defs": {
            "input": {
                "type": "object",
                "properties": {
                    "x-role": {
                        "enum": list(get_args(Role)),
                        "description": "What the input means to the runtime; one input per role, of the role's "
                        "type: " + ", ".join(f"{role} {kind}" for role, kind in ROLE_TYPES.items()) + ".",
                    },
                    "x-group": {"enum": list(INPUT_GROUPS), "description": "The form section the input is shown in."},
                    "x-widget": {"enum": list(INPUT_WIDGETS), "description": "How a form edits the input."},
                    "x-collection": {
                        "enum": list(INPUT_COLLECTIONS),
                        "description": "A list of values, or of {key, value} entries, edited as a collection.",
                    },
                    "x-options": {
                        "type": "object",
                        "description": "Where the input's choices come from: see options.schema.json.",
                    },
                    "x-suggestions": {"type": "array", "description": "Values offered to pick from."},
                    "x-suggestions-by": {
                        "type": "object",
                        "description": "Values offered by the value of another input of the same action, e.g. the "
                        "kinds of record under each parent kind: shown instead of x-suggestions once that input is "
                        "given.",
                        "properties": {
                            "input": {"type": "string", "minLength": 1},
                            "values": {
                                "type": "object",
                                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "required": ["input", "values"],
                        "additionalProperties": False,
                    },
                },
            }
        },
    }


def meta_schemas() -> dict[str, dict[str, Any]]:
    """The JSON meta-schema of each kind of data file, as checked in under schemas/meta/: strategy names enumerate
    the built-in strategies (connector.strategies.BUILT_IN), whatever else this process registered."""
    from connector.strategies import BUILT_IN

    out = {}
    for kind in FILE_KINDS:
        schema = _validator(kind, _names(BUILT_IN)).json_schema()
        out[kind] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    out["input"] = input_meta_schema()
    return out


if __name__ == "__main__":  # python -m connector.models [DIR]: regenerate schemas/meta/
    import json
    from pathlib import Path as _Path

    target = _Path(sys.argv[1] if len(sys.argv) > 1 else _Path(__file__).parent.parent / "schemas" / "meta")
    for kind, schema in meta_schemas().items():
        (target / f"{kind}.schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
