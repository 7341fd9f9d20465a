"""The server reads the whole request, then closes the socket without answering: the request may have acted.

A write must then never be re-sent on its own (it could create a duplicate), and in engine mode the error tells the
engine so: `retryable` false, `may_have_acted` true, unless the action asks to retry all errors."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from connector import Connector
from connector.errors import TransientError
from tests.conftest import FakeClock
from tests.hostile.conftest import raised, within
from tests.hostile.server import HostileServer, Reply, Request, Wire

CREATE = {"recordType": "Leads", "fieldValues": {"Last_Name": "Doe"}}
GET_LEAD = {"recordType": "Leads", "recordId": "5001"}


def _hang_up(request: Request, wire: Wire) -> None:
    return None  # the server shuts the socket once the handler returns


@pytest.fixture
def engine(clock: FakeClock) -> Any:
    with Connector.load(engine_mode=True, clock=clock, sleep=clock.sleep, jitter=lambda d: d) as connector:
        yield connector


def test_engine_mode_a_create_cut_off_after_sending_is_not_retryable(
    server: HostileServer, engine: Connector, connection: dict[str, Any]
) -> None:
    server.on("POST", "/crm/v8/Leads", _hang_up)
    error = raised(within(10, lambda: engine.run("crmCreateRecord", CREATE, connection=connection)), TransientError)
    assert error.retryable is False
    assert error.may_have_acted is True
    assert error.to_dict()["error"]["may_have_acted"] is True
    assert server.count("POST", "/crm/v8/Leads") == 1


def test_engine_mode_a_cut_off_create_with_retry_all_errors_is_retryable(
    server: HostileServer, engine: Connector, connection: dict[str, Any]
) -> None:
    server.on("POST", "/crm/v8/Leads", _hang_up)
    outcome = within(
        10, lambda: engine.run("crmCreateRecord", {**CREATE, "retryAllErrors": True}, connection=connection)
    )
    error = raised(outcome, TransientError)
    assert error.retryable is True
    assert error.may_have_acted is True  # still true: the engine should know a duplicate is possible
    assert server.count("POST", "/crm/v8/Leads") == 1


def test_a_cut_off_create_is_not_resent_by_local_retries(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    server.on("POST", "/crm/v8/Leads", _hang_up)
    error = raised(within(10, lambda: connector.run("crmCreateRecord", CREATE, connection=connection)), TransientError)
    assert (error.retryable, error.may_have_acted) == (False, True)
    assert server.count("POST", "/crm/v8/Leads") == 1


def test_engine_mode_a_cut_off_read_is_retryable(
    server: HostileServer, engine: Connector, connection: dict[str, Any]
) -> None:
    server.on("GET", "/crm/v8/Leads/5001", _hang_up)
    error = raised(within(10, lambda: engine.run("crmGetRecord", GET_LEAD, connection=connection)), TransientError)
    assert error.retryable is True
    assert server.count() == 1


def test_a_cut_off_read_is_retried_and_succeeds(
    server: HostileServer, connector: Connector, connection: dict[str, Any]
) -> None:
    answers = iter([None, Reply({"data": [{"id": "5001"}]})])
    server.on("GET", "/crm/v8/Leads/5001", lambda _request, _wire: next(answers))
    outcome = within(10, lambda: connector.run("crmGetRecord", GET_LEAD, connection=connection))
    assert outcome.error is None, repr(outcome.error)
    assert outcome.result == {"data": {"data": [{"id": "5001"}]}}
    assert server.count() == 2


def test_engine_mode_a_create_that_could_not_connect_did_not_act(engine: Connector, connection: dict[str, Any]) -> None:
    """The control: a refused connection certainly sent nothing, so even a create may be retried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens there
    refused = {**connection, "api_domain": f"http://127.0.0.1:{port}"}
    error = raised(within(10, lambda: engine.run("crmCreateRecord", CREATE, connection=refused)), TransientError)
    assert (error.retryable, error.may_have_acted) == (True, False)
