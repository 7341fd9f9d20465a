"""The OAuth token record that every token store persists.

Its fields are those of Zoho's SDK token table (id, user_name, client_id, client_secret, refresh_token,
access_token, grant_token, expiry, redirect_url, api_domain) plus the accounts server the token belongs to and the
organization ids found for it (product key → id, so that Books or Inventory is asked for its organizations once,
not on every run), so a store written for Zoho's SDKs ports directly. Expiry is kept as epoch seconds (a number,
never a string).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HEADER_SAFE", "SECRET_FIELDS", "Token"]

# Fields that are secrets: masked in every printout, and encrypted at rest when a store has a key.
SECRET_FIELDS = ("client_secret", "refresh_token", "access_token", "grant_token")

# What an access token (or an organization id) may hold to travel in a header: visible ASCII, no space. Anything
# else (CR/LF, NUL, accents) either splits the header (httpx refuses it: LocalProtocolError, which is no network
# failure to retry) or cannot be encoded at all (UnicodeEncodeError).
HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, kw_only=True)
class Token:
    """One user's credentials for one OAuth client. Immutable: `replace()` makes the updated copy."""

    id: str | None = None
    user_name: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    grant_token: str | None = None
    expires_at: float | None = None  # epoch seconds when access_token stops working
    redirect_url: str | None = None
    api_domain: str | None = None  # e.g. "https://www.zohoapis.eu", as Zoho's token response names it
    accounts_url: str | None = None  # e.g. "https://accounts.zoho.eu"
    organization_ids: dict[str, str] = field(default_factory=dict, hash=False)  # e.g. {"books": "10234695"}

    def replace(self, **changes: Any) -> Token:
        return dataclasses.replace(self, **changes)

    def is_fresh(self, now: float, margin: float = 0.0) -> bool:
        """True when the access token exists and stays valid for at least `margin` more seconds."""
        return bool(self.access_token) and self.expires_at is not None and self.expires_at - margin > now

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Token:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("organization_ids") is None:
            values.pop("organization_ids", None)
        return cls(**values)

    def masked(self) -> dict[str, Any]:
        """The token as a dict with every secret masked, for status output."""
        return {k: (mask(v) if k in SECRET_FIELDS else v) for k, v in self.to_dict().items()}

    def __repr__(self) -> str:  # never print secrets, even by accident
        shown = ", ".join(f"{k}={v!r}" for k, v in self.masked().items() if v is not None)
        return f"Token({shown})"

    __str__ = __repr__


def mask(value: str | None) -> str | None:
    """'1000.abcdef…' → '1000.…(41 chars)': enough to tell tokens apart, never enough to use one."""
    if value is None:
        return None
    head = value.split(".", 1)[0] + "." if "." in value[:6] else ""
    return f"{head}…({len(value)} chars)"
