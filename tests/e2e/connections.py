"""Connections to a running sandbox, as the end-to-end tests use them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from connector.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def with_refresh_token(sandbox: str, tmp_path: Path) -> dict[str, Any]:
    """A connection holding a refresh token minted by the sandbox: every run refreshes through a SQLite store."""
    return refreshing(sandbox, f"sqlite:///{tmp_path / 'tokens.db'}")


def refreshing(sandbox: str, token_store: str) -> dict[str, Any]:
    """A connection holding a refresh token minted by the sandbox, its tokens (and limits) kept in `token_store`."""
    tokens = httpx.post(f"{sandbox}/__sandbox/tokens", json={}, timeout=30).json()
    return {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "refresh_token": tokens["refresh_token"],
        "accounts_url": sandbox,
        "api_domain": sandbox,
        "token_store": token_store,
    }


def with_access_token(sandbox: str) -> dict[str, Any]:
    """A connection holding a one-hour access token minted by the sandbox (no token store involved)."""
    token = httpx.post(f"{sandbox}/__sandbox/tokens", json={}).json()["access_token"]
    return {"access_token": token, "accounts_url": sandbox, "api_domain": sandbox}
