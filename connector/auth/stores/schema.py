"""What every token store shares about the record: its columns, how a Token becomes a row and back, which text a
store can keep, and the upsert rule with the match-key digests that back it.

This is the one place for them, so that all stores agree exactly: a store only fetches the candidate rows (those
sharing any match key with the token, found through indexed digests) and lets `plan_upsert` decide.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError

__all__ = [
    "COLUMNS",
    "FIELDS",
    "KEYS",
    "NUMBER_FIELDS",
    "RULES",
    "Keys",
    "check_id",
    "check_token",
    "digest",
    "find_match",
    "from_row",
    "keys_of",
    "new_id",
    "plan_upsert",
    "saved_id",
    "to_row",
]

# Token fields as stored. expires_at is a number; organization_ids is canonical JSON text (NULL when empty).
FIELDS = (
    "id",
    "user_name",
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "grant_token",
    "expires_at",
    "redirect_url",
    "api_domain",
    "accounts_url",
    "organization_ids",
)
NUMBER_FIELDS = ("expires_at",)
# The digests unique indexes and lookups use (see Keys), after the fields in every SQL table.
KEYS = ("id_key", "user_key", "access_key", "refresh_key", "grant_key")
COLUMNS = FIELDS + KEYS


# -- rows ------------------------------------------------------------------------------------------------------


def to_row(token: Token) -> dict[str, Any]:
    """The token as column values: text, a float for expires_at, None for absent values."""
    row: dict[str, Any] = {f: getattr(token, f) for f in FIELDS}
    row["organization_ids"] = _ids_text(token.organization_ids)
    if row["expires_at"] is not None:
        row["expires_at"] = float(row["expires_at"])
    return row


def from_row(row: Mapping[str, Any]) -> Token:
    """The token a row holds (the inverse of `to_row`); unknown columns are ignored."""
    values: dict[str, Any] = {f: row.get(f) for f in FIELDS}
    values["organization_ids"] = _ids_value(values["organization_ids"])
    if values["expires_at"] is not None:
        values["expires_at"] = float(values["expires_at"])
    return Token(**values)


def _ids_text(ids: Mapping[str, str]) -> str | None:
    return json.dumps(dict(ids), sort_keys=True, separators=(",", ":")) if ids else None


def _ids_value(text: Any) -> dict[str, str]:
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else text
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConnectionConfigError("a stored token's organization_ids is not a JSON object of strings")
    return value


# -- text a store can keep -------------------------------------------------------------------------------------


def _bad_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no database, file or Redis server can store it as text
        return True
    return False


def check_token(token: Token) -> Token:
    """`token` unchanged, or a ConnectionConfigError naming the field whose text no store can keep."""
    for name in FIELDS:
        value = getattr(token, name)
        if isinstance(value, str) and _bad_text(value):
            raise _not_text(name)
    for product, org in token.organization_ids.items():
        if not isinstance(product, str) or not isinstance(org, str) or _bad_text(product) or _bad_text(org):
            raise _not_text("organization_ids")
    return token


def check_id(id: str) -> str:
    if _bad_text(id):
        raise _not_text("id")
    return id


def _not_text(name: str) -> ConnectionConfigError:
    return ConnectionConfigError(
        f"the token's {name} is not valid text (it holds a lone UTF-16 surrogate such as \\ud800, which no token "
        "store can keep): fix the value in the connection"
    )


# -- the upsert rule -------------------------------------------------------------------------------------------


class _Rule(NamedTuple):
    name: str  # what the two tokens share, for error messages (never the value)
    applies: Callable[[Token], bool]  # the token carries this match key
    same: Callable[[Token, Token], bool]


def _pair(field: str) -> tuple[Callable[[Token], bool], Callable[[Token, Token], bool]]:
    def applies(t: Token) -> bool:
        return bool(t.client_id and t.client_secret and getattr(t, field))

    def same(a: Token, b: Token) -> bool:
        return (a.client_id, a.client_secret, getattr(a, field)) == (b.client_id, b.client_secret, getattr(b, field))

    return applies, same


# The upsert rule of base.py, in order. Empty strings count as absent, as in Zoho's SDK.
RULES = (
    _Rule("user name", lambda t: bool(t.user_name), lambda a, b: a.user_name == b.user_name),
    _Rule("access token", lambda t: bool(t.access_token), lambda a, b: a.access_token == b.access_token),
    _Rule("refresh token and client", *_pair("refresh_token")),
    _Rule("grant token and client", *_pair("grant_token")),
    _Rule("id", lambda t: bool(t.id), lambda a, b: a.id == b.id),
)


def find_match(token: Token, rows: Iterable[Token]) -> Token | None:
    """The row `token` matches by the upsert rule: the first rule the token carries that some row satisfies."""
    rows = list(rows)
    for rule in RULES:
        if rule.applies(token):
            for row in rows:
                if rule.same(token, row):
                    return row
    return None


def plan_upsert(token: Token, rows: Iterable[Token]) -> Token | None:
    """The row that saving `token` replaces (None: insert), after checking that no other row would then share a
    match key with it. Such a row holds the same credential under another record; replacing one and keeping the
    other would leave two rows for one match, and deleting it silently could lose another user's token, so the
    save is refused instead."""
    rows = list(rows)
    match = find_match(token, rows)
    for row in rows:
        if match is not None and row.id == match.id:
            continue
        for rule in RULES[:-1]:  # the id of the saved row is the matched row's (or a new) id
            if rule.applies(token) and rule.same(token, row):
                where = f"stored token {match.id}" if match is not None else "no stored token"
                raise ConnectionConfigError(
                    f"cannot save the token: it matches {where}, but stored token {row.id} has the same "
                    f"{rule.name}; delete one of them first"
                )
    return match


def saved_id(token: Token, match: Token | None) -> str:
    """The id a saved token gets: the matched row's, else the token's own, else a new one."""
    if match is not None and match.id:
        return match.id
    return token.id or new_id()


def new_id() -> str:
    return uuid.uuid4().hex


def digest(*parts: str) -> str:
    # JSON keeps the parts apart unambiguously (no "a"+"bc" == "ab"+"c").
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


class Keys(NamedTuple):
    """Fixed-width digests of the match keys. Databases index these instead of the values themselves: a 10 KB
    token does not fit a unique index in MySQL or PostgreSQL, and MySQL's collations would compare 'Bob' and
    'bob ' as equal. Unsalted SHA-256 is fine here: the value it hides is stored in the same row."""

    id_key: str | None
    user_key: str | None
    access_key: str | None
    refresh_key: str | None
    grant_key: str | None


def keys_of(token: Token) -> Keys:
    def pair(value: str | None, kind: str) -> str | None:
        if token.client_id and token.client_secret and value:
            return digest(kind, token.client_id, token.client_secret, value)
        return None

    return Keys(
        id_key=digest("id", token.id) if token.id else None,
        user_key=digest("user", token.user_name) if token.user_name else None,
        access_key=digest("access", token.access_token) if token.access_token else None,
        refresh_key=pair(token.refresh_token, "refresh"),
        grant_key=pair(token.grant_token, "grant"),
    )
