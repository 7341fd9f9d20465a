"""Secret scrubbing for debug output and error text.

Debug Request logs method, URL, status and (truncated) bodies; everything that could authenticate someone —
the Authorization header, tokens and client secrets in bodies or URLs, grant codes — is replaced by "[redacted]".
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

__all__ = ["SECRET_KEYS", "redact_request", "redact_response", "redact_text", "redact_url"]

SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "client_secret", "code", "grant_token", "token", "password", "authorization"}
)
REDACTED = "[redacted]"
BODY_LIMIT = 2000

_JSON_SECRET = re.compile(
    r'("(?:' + "|".join(sorted(SECRET_KEYS)) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"', flags=re.IGNORECASE
)
_FORM_SECRET = re.compile(r"(?<![\w])((?:" + "|".join(sorted(SECRET_KEYS)) + r")=)[^&\s]*", flags=re.IGNORECASE)
_OAUTH_HEADER = re.compile(r"(Zoho-oauthtoken|Bearer)\s+\S+", flags=re.IGNORECASE)
# Zoho tokens look like 1000.<32 hex>.<32 hex>; scrub them wherever they appear.
_ZOHO_TOKEN = re.compile(r"\b1000\.[0-9a-f]{16,}(?:\.[0-9a-f]{16,})?\b", flags=re.IGNORECASE)


def redact_text(text: str) -> str:
    text = _JSON_SECRET.sub(rf'\1"{REDACTED}"', text)
    text = _FORM_SECRET.sub(rf"\1{REDACTED}", text)
    text = _OAUTH_HEADER.sub(rf"\1 {REDACTED}", text)
    return _ZOHO_TOKEN.sub(REDACTED, text)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, REDACTED if k.lower() in SECRET_KEYS else v) for k, v in parse_qsl(parts.query, True)]
    netloc = parts.netloc.rsplit("@", 1)[-1]  # drop user:password@
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def _body(content: bytes, content_type: str) -> str:
    if not content:
        return ""
    if "multipart" in content_type:
        return f"<multipart body, {len(content)} bytes>"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return f"<binary body, {len(content)} bytes>"
    text = redact_text(text)
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"… ({len(text)} chars)"


def redact_request(request: httpx.Request) -> str:
    headers = {k: (REDACTED if k.lower() in SECRET_KEYS else v) for k, v in request.headers.items()}
    body = _body(request.content if _has_content(request) else b"", request.headers.get("content-type", ""))
    return f"{request.method} {redact_url(str(request.url))} headers={headers} body={body!r}"


def redact_response(response: httpx.Response) -> str:
    body = _body(response.content, response.headers.get("content-type", ""))
    return f"{response.status_code} {redact_url(str(response.request.url))} body={body!r}"


def _has_content(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises for a streaming body that was not read
    except httpx.RequestNotRead:
        return False
    return True
