"""Redaction of everything that could authenticate someone, and nothing a user needs to read."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

from connector import Connector, ZohoAPIError
from connector._redact import REDACTED, redact_request, redact_response, redact_text, redact_url, redact_value
from connector.cli import main

TOKEN = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"
HALVES = TOKEN.split(".")[1:]
GRANT = "1000.5d1c0e6a7b8f9a0b1c2d3e4f5a6b7c8d.9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"


def leaks(shown: str, *secrets: str) -> list[str]:
    return [secret for secret in (*secrets, *HALVES) if secret in shown]


def test_json_form_header_and_bare_tokens() -> None:
    text = (
        f'{{"access_token": "{TOKEN}", "refresh_token":"r", "client_secret": "s\\"q"}} '
        f"code={GRANT}&client_secret=abc Authorization: Zoho-oauthtoken {TOKEN} and {TOKEN}"
    )
    scrubbed = redact_text(text)
    assert not leaks(scrubbed, GRANT, "abc", '"r"', 's\\"q')
    assert '"refresh_token":"[redacted]"' in scrubbed  # still readable as JSON


@pytest.mark.parametrize("scheme", ["Zoho-oauthtoken", "Bearer", "Acme-authtoken", "widget-OAuthToken"])
def test_an_authorization_scheme_hides_its_credential_whatever_the_vendor(scheme: str) -> None:
    """The runtime names no vendor's scheme: any `<Vendor>-<…>token` scheme, and Bearer, hide what follows."""
    scrubbed = redact_text(f"refused the header {scheme} SECRETVALUE, try again")
    assert scrubbed == f"refused the header {scheme} [redacted], try again"
    assert "SECRETVALUE" not in redact_text(f"refused: Authorization: {scheme} SECRETVALUE")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{'access_token': 'SECRETVALUE', 'x': 1}", id="python-repr"),
        pytest.param('{"details": "{\\"client_secret\\":\\"SECRETVALUE\\"}"}', id="escaped-json-in-json"),
        pytest.param('{"accessToken": "SECRETVALUE"}', id="camel-case"),
        pytest.param("X-Api-Key: SECRETVALUE", id="header-line"),
        pytest.param("proxy https://bob:SECRETVALUE@proxy.example:8080 refused", id="url-credentials"),
        pytest.param("invalid token Bearer SECRETVALUE", id="bearer"),
    ],
)
def test_secrets_in_other_text_shapes(text: str) -> None:
    scrubbed = redact_text(text)
    assert "SECRETVALUE" not in scrubbed and REDACTED in scrubbed


def test_a_secret_json_number_becomes_a_json_string() -> None:
    assert json.loads(redact_text('{"password": 12345678, "x": 1}')) == {"password": REDACTED, "x": 1}


def test_tokens_glued_to_text_and_jwts_are_scrubbed() -> None:
    scrubbed = redact_text(f"tok{TOKEN}xyz id={JWT};")
    assert not leaks(scrubbed, JWT) and scrubbed.startswith("tok") and scrubbed.endswith("xyz id=[redacted];")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"code":"INVALID_DATA","details":{"api_name":"Email"},"message":"invalid data"}', id="crm"),
        pytest.param('{"code": 0, "message": "success"}', id="books-ok"),
        pytest.param('{"code":1002,"message":"Invoice does not exist."}', id="books-error"),
        pytest.param('{"code":"Access Denied","message":"too many requests"}', id="crm-throttle"),
        pytest.param("?code=INVALID_DATA&page_token=abc123&next_page_token=def456", id="codes-and-cursors"),
        pytest.param('{"amount": 1000.0000000000000000001, "rate": 1000.12345678901234567}', id="decimals"),
        pytest.param("The Basic plan allows 1000 calls", id="prose"),
    ],
)
def test_zoho_codes_cursors_and_numbers_stay_readable(text: str) -> None:
    assert redact_text(text) == text


def test_redact_value_on_a_zoho_error_that_echoes_the_token() -> None:
    body: dict[str, Any] = {
        "code": "INVALID_TOKEN",
        "details": {"access_token": TOKEN, "header": f"Zoho-oauthtoken {TOKEN}"},
        "message": f"invalid oauth token Zoho-oauthtoken {TOKEN}",
        "status": "error",
    }
    shown = redact_value(body)
    assert shown == {
        "code": "INVALID_TOKEN",
        "details": {"access_token": REDACTED, "header": f"Zoho-oauthtoken {REDACTED}"},
        "message": f"invalid oauth token Zoho-oauthtoken {REDACTED}",
        "status": "error",
    }
    assert body["details"]["access_token"] == TOKEN  # a copy: the caller's value is untouched


def test_redact_value_keeps_what_a_user_reads() -> None:
    books = {"code": 57, "message": "You are not authorized to perform this operation"}
    crm_207 = {
        "data": [
            {"code": "SUCCESS", "details": {"id": "5725767000000524157"}, "status": "success"},
            {"code": "INVALID_DATA", "details": {"api_name": "Email", "expected_data_type": "email"}},
        ],
        "info": {"more_records": True, "next_page_token": "c8582e7f5b4c", "count": 2, "ratio": 1.5},
    }
    assert redact_value(books) == books and redact_value(crm_207) == crm_207
    assert redact_value(None) is None and redact_value(True) is True and redact_value(3.5) == 3.5


def test_redact_value_hides_secret_keys_grant_codes_and_nested_secrets() -> None:
    token_reply = {
        "access_token": TOKEN,
        "refresh_token": TOKEN,
        "api_domain": "https://www.zohoapis.eu",
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    assert redact_value(token_reply) == {
        **token_reply,
        "access_token": REDACTED,
        "refresh_token": REDACTED,
    }
    nested = {
        "code": GRANT,
        "Client-Secret": {"value": "abc"},
        "attempts": ({"password": "hunter2"}, [f"see {TOKEN}"]),
        "refresh_token": None,  # an absent secret is shown as absent
    }
    assert redact_value(nested) == {
        "code": REDACTED,
        "Client-Secret": REDACTED,
        "attempts": ({"password": REDACTED}, [f"see {REDACTED}"]),
        "refresh_token": None,
    }


def test_redact_value_survives_deep_nesting_without_leaking() -> None:
    deep: Any = {"access_token": TOKEN}
    for _ in range(500):
        deep = {"inner": [deep]}
    assert not leaks(json.dumps(redact_value(deep)))


def test_urls_lose_secret_parameters_and_credentials() -> None:
    url = redact_url("https://user:pw@accounts.zoho.eu/oauth/v2/token?refresh_token=rt&client_id=1000.ID&page=2")
    assert "pw" not in url and "rt" not in url.split("?")[1].replace("refresh_token", "")
    assert "client_id=1000.ID" in url and "page=2" in url and "refresh_token=[redacted]" in url


def test_urls_lose_token_shaped_values_under_any_name() -> None:
    url = redact_url(f"https://www.zohoapis.eu/crm/v8/Leads/{TOKEN}?foo={TOKEN}&page_token=abc&code=INVALID")
    assert not leaks(url) and "page_token=abc" in url and "code=INVALID" in url


def test_code_is_a_grant_code_on_the_accounts_server_only() -> None:
    token_url = "https://accounts.zoho.com/oauth/v2/token?code=shortgrant&grant_type=authorization_code"
    assert "shortgrant" not in redact_url(token_url) and "grant_type=authorization_code" in redact_url(token_url)
    assert "code=ABC" in redact_url("https://www.zohoapis.com/crm/v8/Leads?code=ABC")
    assert GRANT not in redact_url(f"https://www.zohoapis.com/crm/v8/Leads?code={GRANT}")


def test_requests_show_method_url_and_scrubbed_body() -> None:
    request = httpx.Request(
        "POST",
        "https://www.zohoapis.eu/crm/v8/Leads",
        headers={"Authorization": f"Zoho-oauthtoken {TOKEN}"},
        json={"data": [{"Last_Name": "Doe"}], "refresh_token": "1000.secret"},
    )
    shown = redact_request(request)
    assert shown.startswith("POST https://www.zohoapis.eu/crm/v8/Leads")
    assert TOKEN not in shown and "1000.secret" not in shown and "Doe" in shown


def test_requests_scrub_any_header_or_parameter_holding_a_token() -> None:
    request = httpx.Request(
        "GET",
        f"https://www.zohoapis.eu/crm/v8/Leads?foo={TOKEN}&fields=Email",
        headers={
            "X-Custom": TOKEN,
            "X-Forwarded-Auth": f"Bearer {JWT}",
            "Cookie": "session=s3ss10n",
            "Proxy-Authorization": "Basic dXNlcjpwYXNz",
            "Accept": "application/json",
        },
    )
    shown = redact_request(request)
    assert not leaks(shown, JWT, "s3ss10n", "dXNlcjpwYXNz")
    assert "fields=Email" in shown and "'accept': 'application/json'" in shown


def test_form_bodies_to_the_accounts_server_hide_the_grant_code_and_secret() -> None:
    request = httpx.Request(
        "POST",
        "https://accounts.zoho.eu/oauth/v2/token",
        data={"grant_type": "authorization_code", "client_id": "1000.CLIENT", "client_secret": "cs", "code": "g"},
    )
    shown = redact_request(request)
    assert "client_secret=[redacted]" in shown and "code=[redacted]" in shown
    assert "grant_type=authorization_code" in shown and "client_id=1000.CLIENT" in shown


def test_responses_scrub_set_cookie_custom_headers_and_the_body() -> None:
    request = httpx.Request("POST", "https://accounts.zoho.eu/oauth/v2/token")
    response = httpx.Response(
        200,
        headers={"Set-Cookie": "iamcsr=c00k13; Path=/", "X-Echo": TOKEN, "X-Rate-Limit-Remaining": "99"},
        json={"access_token": TOKEN, "api_domain": "https://www.zohoapis.eu", "expires_in": 3600},
        request=request,
    )
    shown = redact_response(response)
    assert not leaks(shown, "c00k13")
    assert shown.startswith("200 https://accounts.zoho.eu/oauth/v2/token")
    assert "'x-rate-limit-remaining': '99'" in shown and "https://www.zohoapis.eu" in shown


def test_responses_keep_zoho_error_codes() -> None:
    request = httpx.Request("POST", "https://www.zohoapis.eu/crm/v8/Leads")
    response = httpx.Response(400, json={"code": "INVALID_DATA", "message": "invalid data"}, request=request)
    assert '"code": "INVALID_DATA"' in redact_response(response)


AROUND = st.text(max_size=30)


@given(before=AROUND, after=AROUND)
def test_a_token_anywhere_in_text_is_scrubbed(before: str, after: str) -> None:
    assume(not any(half in before + after for half in HALVES))
    assert not leaks(redact_text(before + TOKEN + after))


@given(before=AROUND, after=AROUND, key=st.text(min_size=1, max_size=10))
def test_a_token_anywhere_in_a_json_value_is_scrubbed(before: str, after: str, key: str) -> None:
    assume(not any(half in before + after + key for half in HALVES))
    body = {key: [before + TOKEN + after, {"message": f"{before} Zoho-oauthtoken {TOKEN}"}]}
    assert not leaks(json.dumps(redact_value(body)))


@given(value=st.text(max_size=20))
def test_a_token_in_any_query_parameter_is_scrubbed(value: str) -> None:
    assume(not any(half in value for half in HALVES))
    url = httpx.URL("https://www.zohoapis.eu/crm/v8/Leads", params={"x": value + TOKEN, "y": value})
    assert not leaks(redact_url(str(url)))


# --- the token a call sent, whatever it looks like ----------------------------------------------------------------

PLAIN = "PlainSecretTokenValue42"  # not Zoho's shape: found only because the call sent it


def test_the_sent_token_is_scrubbed_wherever_an_error_echoes_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, httpx_mock: HTTPXMock
) -> None:
    """Issue 8.12's echo, with a token the shape rules cannot know (a proxy's, a test server's): the token the
    call sent is scrubbed from str(), to_dict() and the CLI's output; Zoho's code stays readable."""
    body = {"code": "INVALID_TOKEN", "message": f"bad token {PLAIN}", "details": {"seen": [f"x{PLAIN}y"]}}
    httpx_mock.add_response(status_code=400, json=body, is_reusable=True)
    connection = {"region": "eu", "access_token": PLAIN}
    inputs = {"recordType": "Leads", "recordId": "1"}
    with Connector.load() as connector, pytest.raises(ZohoAPIError) as caught:
        connector.run("crmGetRecord", inputs, connection=connection)
    shown = str(caught.value) + json.dumps(caught.value.to_dict()) + repr(caught.value)
    assert PLAIN not in shown and "INVALID_TOKEN" in shown
    request = {"action": "crmGetRecord", "inputs": inputs, "connection": connection}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(request)))
    main(["invoke"])
    out, err = capsys.readouterr()
    assert PLAIN not in out + err and "INVALID_TOKEN" in out


def test_known_secrets_are_scrubbed_by_value_and_short_ones_left_alone() -> None:
    assert redact_text(f"a {PLAIN} b", known=(PLAIN,)) == f"a {REDACTED} b"
    assert redact_value({"m": [f"{PLAIN}!"]}, known=(PLAIN,)) == {"m": [f"{REDACTED}!"]}
    assert redact_text("the id is abc", known=("abc",)) == "the id is abc"  # too short to search for
