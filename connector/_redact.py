"""Secret scrubbing for debug output and error text.

Everything that could authenticate someone is replaced by "[redacted]": the Authorization, Proxy-Authorization,
Cookie and Set-Cookie headers; values under secret-named keys (access/refresh tokens, client secrets, passwords)
in JSON, forms, query strings and free text; OAuth grant codes; and token-shaped strings (Zoho's `1000.<hex>…`,
JWTs, `Zoho-oauthtoken …`/`Bearer …`) wherever they appear, whatever the header or parameter is called.

`code` is special: Zoho's error codes (`"code": "INVALID_DATA"`, Books' `"code": 0`) are what a user needs to read,
so it is redacted only as an OAuth grant code — in the query or form of a request to the accounts server, or when
the value has a grant code's `1000.` shape.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

__all__ = [
    "REDACTED",
    "SECRET_KEYS",
    "redact_request",
    "redact_response",
    "redact_text",
    "redact_url",
    "redact_value",
    "sent_secrets",
]

# Compared after dropping case, "-" and "_": accessToken, Access-Token and access_token are one key. Suffixes
# are not matched: CRM's `page_token`/`next_page_token` are pagination cursors a user needs to resume a walk.
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "grant_token",
        "id_token",
        "token",
        "authtoken",
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "x_api_key",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
    }
)
REDACTED = "[redacted]"
BODY_LIMIT = 2000
_MIN_KNOWN = 8  # a known secret shorter than this is not searched for: it would scrub ordinary words
_MAX_DEPTH = 64  # deeper than any Zoho answer; past it a value is hidden whole rather than recursed into

_SECRET_NAMES = frozenset(key.replace("_", "") for key in SECRET_KEYS)
_KEY_ALTERNATIVES = "|".join(sorted((key.replace("_", "[_-]?") for key in SECRET_KEYS), key=len, reverse=True))
_QUOTE = r"""(?:\\?["'])?"""
# A secret-named key in JSON, a Python repr, a form, a query string or "key: value" text, and its value:
# a quoted string (plain or backslash-escaped), or a bare run up to a separator.
_VALUE = r"""(?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\\"(?:[^"\\]|\\[^"])*\\"|(?![{\[])[^\s,;&}\]"'\\]+)"""
_KEYED_SECRET = re.compile(
    rf"(?P<k>(?<![\w-]){_QUOTE}(?:{_KEY_ALTERNATIVES}){_QUOTE}(?![\w-])\s*[:=]\s*){_VALUE}", flags=re.IGNORECASE
)
_KEYED_GRANT_CODE = re.compile(
    rf"""(?P<k>(?<![\w-]){_QUOTE}code{_QUOTE}(?![\w-])\s*[:=]\s*)(?P<q>\\?["']?)1000\.[^\s"'&,;}}\]\\]*""",
    flags=re.IGNORECASE,
)
# An Authorization scheme and its credential: Bearer, or a vendor's own token scheme (`<Vendor>-<…>token`, such as
# the one connections/*.yaml names in `authorization_header`), wherever it is echoed.
_AUTH_SCHEME = re.compile(r"\b(Bearer|[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9]*token)\s+[^\s\"',;]+", flags=re.IGNORECASE)
# Zoho tokens and grant codes look like 1000.<32 hex>.<32 hex>; JWTs start with a base64 '{"'. No word
# boundaries, so a token glued to other text is still caught; a hex letter is required so that a long decimal
# such as 1000.0000000000000001 is left alone.
_TOKEN_SHAPED = re.compile(
    r"1000\.(?=[0-9]*[a-f])[0-9a-f]{16,}(?:\.[0-9a-f]{16,})*|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*", flags=re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(r"(?<=//)[^/\s@:]+:[^/\s@]+@")
_GRANT_CODE = re.compile(r"\s*1000\.\S+")


def redact_text(text: str, known: Collection[str] = ()) -> str:
    """Free text (an error body, a message) with every secret it may echo replaced: by shape and by name, and
    each of `known` (the secret values of the call at hand, whatever they look like) wherever it appears."""
    for secret in known:
        if len(secret) >= _MIN_KNOWN:
            text = text.replace(secret, REDACTED)
    text = _AUTH_SCHEME.sub(rf"\1 {REDACTED}", text)
    text = _KEYED_SECRET.sub(_keep_quotes, text)
    text = _KEYED_GRANT_CODE.sub(rf"\g<k>\g<q>{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(f"{REDACTED}@", text)
    return _TOKEN_SHAPED.sub(REDACTED, text)


def _keep_quotes(match: re.Match[str]) -> str:
    value = match.group("v")
    quote = value[:2] if value.startswith("\\") else value[:1] if value[:1] in "\"'" else ""
    if not quote and match.group("k").startswith('"'):
        quote = '"'  # a JSON number or literal: keep the text valid JSON
    return f"{match.group('k')}{quote}{REDACTED}{quote}"


def redact_value(value: Any, known: Collection[str] = ()) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings, numbers) safe to show: secret-named keys hidden, grant
    codes hidden, secrets inside strings scrubbed (`known` as in redact_text). For Zoho's error message, details
    and response bodies."""
    return _redact(value, 0, tuple(k for k in known if len(k) >= _MIN_KNOWN))


def _redact(value: Any, depth: int, known: tuple[str, ...]) -> Any:
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value, known)
    if isinstance(value, Mapping):
        return {key: _redact_item(key, item, depth + 1, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_redact(item, depth + 1, known) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value  # numbers, booleans, None


def _redact_item(key: Any, value: Any, depth: int, known: tuple[str, ...]) -> Any:
    secret = isinstance(key, str) and (_is_secret_name(key) or (key.lower() == "code" and _is_grant_code(value)))
    return REDACTED if secret and value is not None else _redact(value, depth, known)


def sent_secrets(request: httpx.Request) -> tuple[str, ...]:
    """The credentials a request carried (the token of its Authorization header), to scrub from what its answer
    echoes even when they do not look like Zoho's tokens."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return (credential.strip(),) if scheme and len(credential.strip()) >= _MIN_KNOWN else ()


def _is_secret_name(name: str) -> bool:
    return name.lower().replace("_", "").replace("-", "") in _SECRET_NAMES


def _is_grant_code(value: Any) -> bool:
    return isinstance(value, str) and _GRANT_CODE.match(value) is not None


def _is_accounts(url: str) -> bool:
    """A request to Zoho's OAuth server, where `code` is always a grant code."""
    parts = urlsplit(url)
    return (parts.hostname or "").startswith("accounts.") or "/oauth/" in parts.path


def _redact_pairs(pairs: list[tuple[str, str]], oauth: bool) -> list[tuple[str, str]]:
    def hidden(key: str, value: str) -> bool:
        return _is_secret_name(key) or (key.lower() == "code" and (oauth or _is_grant_code(value)))

    return [(key, REDACTED if hidden(key, value) else redact_text(value)) for key, value in pairs]


def redact_url(url: str) -> str:
    """The URL without credentials, secret query parameters or token-shaped values; the fragment is dropped."""
    parts = urlsplit(url)
    pairs = _redact_pairs(parse_qsl(parts.query, keep_blank_values=True), _is_accounts(url))
    netloc = parts.netloc.rsplit("@", 1)[-1]  # drop user:password@
    path = _TOKEN_SHAPED.sub(REDACTED, parts.path)
    return urlunsplit((parts.scheme, netloc, path, urlencode(pairs, safe="[]"), ""))


def _headers(headers: httpx.Headers) -> dict[str, str]:
    return {name: REDACTED if _is_secret_name(name) else redact_text(value) for name, value in headers.items()}


def _body(content: bytes, content_type: str, url: str) -> str:
    if not content:
        return ""
    if "multipart" in content_type:
        return f"<multipart body, {len(content)} bytes>"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return f"<binary body, {len(content)} bytes>"
    if "x-www-form-urlencoded" in content_type:
        text = urlencode(_redact_pairs(parse_qsl(text, keep_blank_values=True), _is_accounts(url)), safe="[]")
    elif "json" in content_type:
        text = _json_text(text)
    else:
        text = redact_text(text)
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"… ({len(text)} chars)"


def _json_text(text: str) -> str:
    import json

    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return redact_text(text)
    return json.dumps(redact_value(parsed), ensure_ascii=False)


def redact_request(request: httpx.Request) -> str:
    """One log line for a request: method, URL, headers and (truncated) body, with every secret replaced."""
    url = str(request.url)
    body = _body(request.content if _has_content(request) else b"", request.headers.get("content-type", ""), url)
    return f"{request.method} {redact_url(url)} headers={_headers(request.headers)} body={body!r}"


def redact_response(response: httpx.Response) -> str:
    """One log line for an answer: status, URL, headers and (truncated) body, with every secret replaced."""
    url = str(response.request.url)
    body = _body(response.content, response.headers.get("content-type", ""), url)
    return f"{response.status_code} {redact_url(url)} headers={_headers(response.headers)} body={body!r}"


def _has_content(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises for a streaming body that was not read
    except httpx.RequestNotRead:
        return False
    return True
