"""Redaction of everything that could authenticate someone."""

from __future__ import annotations

import httpx

from connector._redact import redact_request, redact_text, redact_url

TOKEN = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"


def test_json_form_header_and_bare_tokens() -> None:
    text = (
        f'{{"access_token": "{TOKEN}", "refresh_token":"r", "client_secret": "s\\"q"}} '
        f"code=grant&client_secret=abc Authorization: Zoho-oauthtoken {TOKEN} and {TOKEN}"
    )
    scrubbed = redact_text(text)
    assert TOKEN not in scrubbed and "grant" not in scrubbed and "abc" not in scrubbed and '"r"' not in scrubbed


def test_urls_lose_secret_parameters_and_credentials() -> None:
    url = redact_url("https://user:pw@accounts.zoho.eu/oauth/v2/token?refresh_token=rt&client_id=1000.ID&page=2")
    assert "pw" not in url and "rt" not in url.split("?")[1].replace("refresh_token", "")
    assert "client_id=1000.ID" in url and "page=2" in url


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
