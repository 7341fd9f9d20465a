"""Planning one call: from an action, its inputs and a connection to everything needed to send it.

A plan is pure data plus small flows: the request (rendered once), the retry policy, the product's strategies
(envelope, host rule, organization convention, pager) and whether the organization id must first be discovered.
Driving the flows — blocking or async — is the runner's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connector import _flow, _response, strategies
from connector._request import OrganizationPlacement, Prepared, prepare
from connector._retry import Schedule
from connector._state import DEFAULT_TIMEOUT, ConnectionState
from connector.connection import Connection, host_inputs, region_host_table
from connector.errors import ConnectionConfigError
from connector.manifest import Action, ConnectionDef, Product
from connector.models import Discovery
from connector.strategies import HostContext, PageLimits, Pager, PageStart

__all__ = ["Call", "Options", "plan"]

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Options:
    """The Connector's own settings that shape every call."""

    engine_mode: bool = False
    clock: Callable[[], float] | None = None
    jitter: Callable[[float], float] | None = None


@dataclass(frozen=True)
class Call:
    action: Action
    product: Product
    definition: ConnectionDef
    connection: Connection  # this call's settings (the state is shared by every connection with its identity)
    inputs: dict[str, Any]
    state: ConnectionState
    prepared: Prepared
    policy: _flow.CallPolicy
    fetch_all: bool
    response_type: str
    organization: OrganizationPlacement | None  # known at planning time
    discover_organization: bool  # the organization id must be looked up (or recalled) first

    def role(self, name: str) -> Any:
        input_name = self.action.inputs_with_role(name)
        return self.inputs.get(input_name) if input_name else None

    def api_domain(self) -> str:
        connection = self.connection
        context = HostContext(
            region_api=connection.api_domain,
            overridden=connection.api_domain_overridden,
            from_token=self.state.tokens.api_domain,
            environment=connection.environment,
            environment_labels=self.definition.environments,
            region=connection.region,
            region_hosts=region_host_table(self.definition, connection.region),
            overrides=connection.host_overrides,
            override_inputs=host_inputs(self.definition.input_schema),
        )
        return strategies.HOSTS[self.product.host](context)

    def flow(
        self, organization: OrganizationPlacement | None, overrides: Mapping[str, Any] | None = None
    ) -> _flow.Flow[_flow.Reply]:
        return _flow.exchange(self.policy, self.builder(organization, overrides))

    def builder(
        self, organization: OrganizationPlacement | None, overrides: Mapping[str, Any] | None = None
    ) -> Callable[[str], httpx.Request]:
        """Builds the request for an access token (which may change between attempts)."""
        return lambda token: self.prepared.build(token, self.api_domain(), organization, overrides)

    def data(self, reply: _flow.Reply) -> Any:
        result = self.action.result
        data = _response.interpret(
            reply,
            self.policy,
            when_empty=result.get("when_empty"),
            empty_is_not_found=bool(result.get("empty_is_not_found")),
            response_type=self.response_type,
        )
        if "output" not in result:
            return data
        from connector import _output

        return _output.shape(result["output"], data, reply, self.policy)

    def pager(self) -> Pager:
        pagination = self.action.pagination or {"pager": ""}
        start = PageStart(self.role("page"), self.role("page_size"), self.role("page_cursor"))
        limits = PageLimits(max_pages=self.connection.policy.max_pages, max_records=pagination.get("max_records"))
        make = strategies.PAGERS[pagination["pager"]]
        pager = make(start, pagination.get("records"), limits, body=self.prepared.json)
        pager.input_names = self._input_names()
        return pager

    def _input_names(self) -> dict[str, str]:
        """Query parameter or body member → the input it is taken from whole (`name: {$input: x}`)."""
        names: dict[str, str] = {}
        for part in ("body", "query"):  # a query parameter wins over a body member of the same name
            template = self.action.request.get(part)
            if isinstance(template, Mapping):
                for member, value in template.items():
                    if isinstance(value, Mapping) and set(value) == {"$input"} and isinstance(value["$input"], str):
                        names[str(member)] = value["$input"]
        return names

    def first_page(self) -> dict[str, Any] | None:
        """Overrides a single call of a paginated action needs (a page_token replaces page)."""
        return (self.pager().single() or None) if self.action.pagination else None

    # --- the organization id, when the product has one ----------------------------------------------------------

    def placement(self, value: str) -> OrganizationPlacement:
        organization = self.product.organization or {"convention": "none", "name": ""}
        return OrganizationPlacement(organization["convention"], organization["name"], value)

    def _discovery(self) -> Discovery | None:
        organization = self.product.organization
        return organization.get("discover") if organization else None

    def discovery_flow(self) -> _flow.Flow[_flow.Reply]:
        discover = self._discovery()
        if discover is None:
            raise ConnectionConfigError(
                f"{self.product.label} needs an organization id: set the connection's organization_id"
            )
        policy = _flow.CallPolicy(
            safety="read",
            envelope=self.policy.envelope,
            max_retries=self.policy.max_retries,
            schedule=Schedule(self.connection.policy.retry_backoff_seconds),
            retry_budget_seconds=self.policy.retry_budget_seconds,
            budget=self.state.budget,
            clock=self.policy.clock,
            jitter=self.policy.jitter,
        )
        auth_header = self.prepared.auth_header

        def build(token: str) -> httpx.Request:
            return httpx.Request(
                "GET",
                f"{self.api_domain()}{self.product.base_path}{discover['path']}",
                headers={"Authorization": f"{auth_header} {token}"},
                extensions={"timeout": DEFAULT_TIMEOUT.as_dict()},
            )

        return _flow.exchange(policy, build)

    def discovered(self, reply: _flow.Reply) -> str:
        discover = self._discovery()
        body = _response.interpret(reply, self.policy)
        members: Mapping[str, str] = {k: str(v) for k, v in (discover or {}).items()}
        chosen = strategies.pick_organization(body, members, self.product.label)
        if chosen is None:
            raise ConnectionConfigError(
                f"the account has no {self.product.label} organization; create one or set organization_id"
            )
        return chosen


def plan(
    action: Action,
    product: Product,
    definition: ConnectionDef,
    connection: Connection,
    values: dict[str, Any],
    state: ConnectionState,
    options: Options,
    *,
    paginate: bool = False,
) -> Call:
    def role(name: str) -> Any:
        input_name = action.inputs_with_role(name)
        return values.get(input_name) if input_name else None

    timeout_ms = role("timeout_ms")
    timeout_seconds = min(timeout_ms / 1000, MAX_TIMEOUT_SECONDS) if timeout_ms else DEFAULT_TIMEOUT.read or 30.0
    timeout = httpx.Timeout(timeout_seconds) if timeout_ms else DEFAULT_TIMEOUT
    auth_header = definition.oauth["authorization_header"]
    prepared = prepare(action, product, values, auth_header=auth_header, timeout=timeout)
    organization, discover = _organization(product, connection, prepared, role("organization_id"))
    response_type = role("response_type") or "json"
    return Call(
        action=action,
        product=product,
        definition=definition,
        connection=connection,
        inputs=values,
        state=state,
        prepared=prepared,
        policy=_policy(
            action, product, connection, state, prepared.method, role, options, timeout_seconds, response_type
        ),
        fetch_all=bool(action.pagination) and (paginate or bool(role("fetch_all"))),
        response_type=response_type,
        organization=organization,
        discover_organization=discover,
    )


def _organization(
    product: Product, connection: Connection, prepared: Prepared, from_input: Any
) -> tuple[OrganizationPlacement | None, bool]:
    """The organization id by precedence: the action's input (or the caller's own query parameter or header),
    then the connection's, then the one discovered for this product (recalled, or looked up before the call)."""
    organization = product.organization
    if organization is None:
        return None, False
    name = organization["name"]
    given = strategies.ORGANIZATIONS[organization["convention"]].given(name, prepared.params, prepared.headers)
    if given:  # the caller's own id wins; placing it lets a convention with two places fill the other one
        return OrganizationPlacement(organization["convention"], name, given), False
    chosen = from_input or connection.organization_ids.get(product.key) or connection.organization_id
    if chosen:
        return OrganizationPlacement(organization["convention"], name, str(chosen)), False
    return None, True


def _policy(
    action: Action,
    product: Product,
    connection: Connection,
    state: ConnectionState,
    method: str,
    role: Callable[[str], Any],
    options: Options,
    timeout_seconds: float,
    response_type: str,
) -> _flow.CallPolicy:
    """Retry settings by precedence: the action's inputs, then the connection, then the defaults."""
    conn = connection.policy
    safety = action.safety
    if safety == "by_method":
        safety = "idempotent" if method in _IDEMPOTENT_METHODS else "write"
    max_retries = role("max_retries")
    delay_ms = role("retry_delay_ms")
    exponential = role("exponential_backoff")
    if exponential or (exponential is None and delay_ms is None):
        schedule = Schedule(base_seconds=conn.retry_backoff_seconds, exponential=True)
    else:
        schedule = Schedule(base_seconds=(delay_ms or 0) / 1000, exponential=False)
    return _flow.CallPolicy(
        safety=safety,
        envelope=strategies.ENVELOPES[product.envelope],
        max_retries=0 if options.engine_mode else (conn.max_retries if max_retries is None else max_retries),
        schedule=schedule,
        throttle_schedule=Schedule(base_seconds=conn.retry_backoff_seconds, exponential=True),
        retry_all=bool(role("retry_all_errors")),
        max_retry_after=conn.max_retry_after,
        retry_budget_seconds=conn.retry_budget_seconds,
        timeout_seconds=timeout_seconds,
        max_response_bytes=conn.max_response_bytes,
        expects_json=response_type == "json",
        debug=bool(role("debug")),
        budget=state.budget,
        jitter=options.jitter,
        clock=options.clock or time.time,
    )
