"""A connection: the user's data centre, OAuth client and tokens, resolved from a plain dict.

The dict is checked against the connection's JSON Schema (`schemas/connections/zoho-oauth.json`), its region is
looked up in the region table (`connections/regions.yaml`) by key or alias, and the accounts and API hosts follow
from it unless the `accounts_url`/`api_domain` overrides say otherwise. A connection input marked `x-host: <key>` in
the schema overrides the region table's `<key>` host (a product served from its own host); host rules read it.
Secrets never show in a repr.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from connector import _schema
from connector._flow import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_RETRY_BUDGET_SECONDS
from connector._inputs import unsafe_values
from connector.auth.tokens import HEADER_SAFE
from connector.errors import ConnectionConfigError, InputValidationError, Violation
from connector.manifest import ConnectionDef
from connector.strategies.pagers import PageLimits

__all__ = [
    "Connection",
    "Policy",
    "check_base_url",
    "entry_accounts",
    "host_inputs",
    "region_host_table",
    "resolve_connection",
    "resolve_region",
    "zoho_hosts",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    """Per-connection call policy, with pyzohoapi's names and defaults."""

    intercall_delay: float = 0.0
    max_retries: int = 10
    max_retry_after: float = 180.0
    min_calls_remaining: int = 1
    retry_backoff_seconds: float = 0.5
    max_concurrency: int = 20
    shared_limits: bool | None = None  # None: shared when the tokens live in a store that can share them
    retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_pages: int = PageLimits().max_pages


@dataclass(frozen=True)
class Connection:
    region: str
    accounts_url: str
    api_domain: str
    environment: str = "production"
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_in: float | None = None
    user_name: str | None = None
    scopes: str = ""
    redirect_uri: str | None = None
    organization_id: str | None = None
    organization_ids: Mapping[str, str] = field(default_factory=dict)  # product key → organization id
    token_store: str | None = field(default=None, repr=False)  # a URL may carry a database password
    policy: Policy = field(default_factory=Policy)
    api_domain_overridden: bool = False
    host_overrides: Mapping[str, str] = field(default_factory=dict)  # region host key → the connection's base URL

    @property
    def cache_key(self) -> tuple[Any, ...]:
        """What identifies the pooled HTTP client and token of this connection within a process: a digest, so that
        the tokens it is made of are not kept around as dictionary keys."""
        parts = (
            self.accounts_url,
            self.api_domain,
            self.client_id,
            self.user_name,
            self.refresh_token,
            self.access_token,
            self.token_store,
        )
        return (_digest(parts),)


def resolve_region(definition: ConnectionDef, value: str) -> str:
    """The region key for what a user typed: 'eu', 'Europe', 'zoho.eu', 'https://accounts.zoho.eu', …"""
    text = value.strip().lower().rstrip("/")
    if text.startswith(("http://", "https://")):
        host = urlsplit(text).hostname or ""
        for key, region in definition.regions.items():
            if host in (urlsplit(region["accounts"]).hostname, urlsplit(region["api"]).hostname):
                return key
    else:
        for key, region in definition.regions.items():
            names = {key, region["label"].lower(), *(a.lower() for a in region.get("aliases", []))}
            if text in names:
                return key
    valid = ", ".join(f"{k} ({r['label']})" for k, r in definition.regions.items())
    raise ConnectionConfigError(f"unknown Zoho region {value!r}; valid regions: {valid}")


def resolve_connection(definition: ConnectionDef, raw: Mapping[str, Any] | Connection) -> Connection:
    """Check a connection dict against its schema and resolve hosts. Raises InputValidationError or
    ConnectionConfigError, both naming the offending field."""
    if isinstance(raw, Connection):
        return raw
    subject = f"connection {definition.key}"
    if not isinstance(raw, Mapping):
        found = [Violation("(connection)", "", f"the connection must be a JSON object, not {_kind(raw)}")]
        raise InputValidationError(subject, found)
    try:
        key: str | None = _digest(raw)
    except (TypeError, ValueError):  # not plain JSON (a key that is not a string, a Decimal, …): not cached
        key = None
    if key is not None:
        with _resolved_lock:
            cached = _resolved.get(key)
            if cached is not None:
                _resolved.move_to_end(key)
                return cached
    resolved = _resolve(definition, dict(raw))
    if key is not None:
        with _resolved_lock:
            _resolved[key] = resolved
            if len(_resolved) > _RESOLVED_MAX:
                _resolved.popitem(last=False)
    return resolved


# Resolved connections by digest of their canonical JSON: secrets are not kept as keys, and the least recently
# used entry goes first when many short-lived connections pass through a long-lived process.
_RESOLVED_MAX = 256
_resolved: OrderedDict[str, Connection] = OrderedDict()
_resolved_lock = threading.Lock()


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _kind(value: Any) -> str:
    """A value's JSON type, as a user who wrote JSON would name it."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _resolve(definition: ConnectionDef, raw: dict[str, Any]) -> Connection:
    schema = definition.input_schema
    found = unsafe_values(raw) or [
        *_credential_violations(schema, raw),
        *_header_violations(raw),
        *_schema.violations(_shape(schema), raw),
    ]
    if found:
        raise InputValidationError(f"connection {definition.key}", sorted(found, key=lambda v: v.pointer))
    values = {name: raw.get(name, prop.get("default")) for name, prop in schema["properties"].items()}
    region = _field(definition, "region", lambda: resolve_region(definition, values["region"]))
    hosts = definition.regions[region]
    environment = values["environment"]
    api = hosts["api"]  # production; a product's host rule may move it to another environment
    accounts_url = _field(definition, "accounts_url", lambda: _override("accounts_url", values["accounts_url"]))
    api_override = _field(definition, "api_domain", lambda: _override("api_domain", values["api_domain"]))
    accounts_url = accounts_url or hosts["accounts"]
    host_overrides = {}
    for key, name in host_inputs(schema).items():
        url = _field(definition, name, partial(_override, name, values.get(name)))
        if url:
            host_overrides[key] = url
    edition = values["edition"]
    policy = Policy(
        intercall_delay=float(values["intercall_delay"]),
        max_retries=int(values["max_retries"]),
        max_retry_after=float(values["max_retry_after"]),
        min_calls_remaining=int(values["min_calls_remaining"]),
        retry_backoff_seconds=float(values["retry_backoff_seconds"]),
        max_concurrency=int(values["max_concurrency"] or definition.editions[edition]),
        shared_limits=None if values["shared_limits"] is None else bool(values["shared_limits"]),
        retry_budget_seconds=float(values["retry_budget_seconds"]),
        max_response_bytes=int(values["max_response_bytes"]),
        max_pages=int(values["max_pages"]),
    )
    return Connection(
        region=region,
        accounts_url=accounts_url,
        api_domain=api_override or api,
        api_domain_overridden=api_override is not None,
        environment=environment,
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        refresh_token=values["refresh_token"],
        access_token=values["access_token"],
        expires_in=values["expires_in"],
        user_name=values["user_name"],
        scopes=values["scopes"],
        redirect_uri=values["redirect_uri"],
        organization_id=values["organization_id"],
        organization_ids=dict(values.get("organization_ids") or {}),
        token_store=values["token_store"],
        policy=policy,
        host_overrides=host_overrides,
    )


def _field(definition: ConnectionDef, name: str, check: Callable[[], T]) -> T:
    """A malformed connection field is bad input (exit 2), named, like any other: exit 3 is for authentication."""
    try:
        return check()
    except ConnectionConfigError as exc:
        raise InputValidationError(f"connection {definition.key}", [Violation(name, f"/{name}", exc.message)]) from None


def host_inputs(schema: Mapping[str, Any]) -> dict[str, str]:
    """Region host key → the connection input that overrides it (the inputs marked `x-host`)."""
    properties = schema.get("properties") or {}
    return {str(p["x-host"]): name for name, p in properties.items() if isinstance(p, Mapping) and p.get("x-host")}


# Which credentials go together. The schema says it too (anyOf, dependentRequired) for engines that check a
# connection before sending it; here each missing field is named, and an empty string counts as not given.
_CREDENTIALS = ("refresh_token", "access_token", "client_id", "client_secret")
_shapes: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}


def _shape(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema without its credential rules, which `_credential_violations` checks with clearer messages."""
    cached = _shapes.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, {k: v for k, v in schema.items() if k not in ("anyOf", "dependentRequired")})
        _shapes[id(schema)] = cached
    return cached[1]


def _credential_violations(schema: Mapping[str, Any], raw: Mapping[str, Any]) -> list[Violation]:
    given = {name for name in _CREDENTIALS if raw.get(name) not in (None, "")}
    client = ("client_id", "client_secret")
    if "refresh_token" in given:
        why = "is required with a refresh_token: the connector needs the client's id and secret to refresh it"
        return [Violation(name, f"/{name}", why) for name in client if name not in given]
    if "access_token" in given:
        return []
    if given & set(client):
        why = "is required: the token store holds the tokens of a client_id and client_secret (or give an access_token)"
        return [Violation(name, f"/{name}", why) for name in client if name not in given]
    message = str(schema.get("x-anyOf-message") or "give a refresh_token, an access_token, or client_id and secret")
    return [Violation("(connection)", "", message)]


def _header_violations(raw: Mapping[str, Any]) -> list[Violation]:
    """The access token goes in the Authorization header as it is: CR/LF, spaces or accents there would split
    the header or could not be sent, so it is refused here, named (and never echoed: it is a secret)."""
    token = raw.get("access_token")
    if not isinstance(token, str) or token == "" or HEADER_SAFE.fullmatch(token):
        return []  # not a string: the schema names it
    why = "may hold only visible ASCII characters (no spaces, line breaks or accents): it is sent in a header"
    return [Violation("access_token", "/access_token", why)]


def _override(name: str, value: str | None) -> str | None:
    """A base URL override: https anywhere, plain http only on a loopback host (tests, the sandbox)."""
    if not value:
        return None
    return check_base_url(name, value)


def check_base_url(name: str, value: str, *, trusted_hosts: Collection[str] | None = None) -> str:
    """The rule for every base URL credentials are sent to (overrides, and what a stored token or a token answer
    names): https, or plain http only on a loopback host; no query or fragment; and, when `trusted_hosts` is
    given, one of those hosts. Returns the URL without its trailing slash; raises ConnectionConfigError naming
    `name` and the host."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ConnectionConfigError(f"{name} must be a full base URL such as https://proxy.example.com") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConnectionConfigError(f"{name} must be a full base URL such as https://proxy.example.com")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConnectionConfigError(f"{name} may use plain http only for a loopback host (127.0.0.1, localhost)")
    if parts.query or parts.fragment:
        raise ConnectionConfigError(f"{name} must not carry a query or fragment")
    if trusted_hosts is not None and host not in trusted_hosts:
        raise ConnectionConfigError(f"{name} names {host}, which is not one of Zoho's hosts nor the connection's")
    return value.rstrip("/")


def zoho_hosts(definition: ConnectionDef) -> frozenset[str]:
    """Zoho's own hosts: every region's (accounts, API, upload and any product's own host), and the API hosts every
    host rule makes of them in every environment (CRM's sandbox. and developer. hosts)."""
    from connector.strategies import HOSTS, HostContext

    hosts: set[str] = set()
    for key, region in definition.regions.items():
        table = _host_table(region)
        hosts.update(urlsplit(url).hostname or "" for url in table.values())
        for environment in definition.environments:
            context = HostContext(region["api"], False, None, environment, definition.environments, key, table)
            for rule in HOSTS.values():
                try:
                    hosts.add(urlsplit(rule(context)).hostname or "")
                except ConnectionConfigError:  # a product this region does not serve
                    continue
    hosts.discard("")
    return frozenset(hosts)


def entry_accounts(definition: ConnectionDef) -> frozenset[str]:
    """The accounts servers the region table marks as multi-DC entry points (`accounts_entry`)."""
    return frozenset(r["accounts"].rstrip("/") for r in definition.regions.values() if r.get("accounts_entry"))


def _host_table(region: Mapping[str, Any]) -> dict[str, str]:
    """A region's hosts by key: its URL-valued entries (not its label and aliases)."""
    return {k: v for k, v in region.items() if isinstance(v, str) and v.startswith("https://")}


def region_host_table(definition: ConnectionDef, region: str) -> dict[str, str]:
    """The hosts of a region by key ({} for a key the table lacks)."""
    return _host_table(definition.regions.get(region, {}))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress  # only for overrides

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
