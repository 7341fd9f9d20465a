"""`zoho-connector auth`: connect a Zoho account and manage its tokens.

auth login    --connection @conn.json [--port 8765]   consent in the browser, code exchanged, tokens stored
auth exchange --connection @conn.json --code CODE     a self-client grant code from the API console
auth status   --connection @conn.json                 the stored token: expiry, region, secrets masked
auth refresh  --connection @conn.json                 a new access token now
auth revoke   --connection @conn.json                 revoke the refresh token at Zoho and forget it
auth tokens list   [--store URL]                      every stored token, secrets masked
auth tokens delete (ID | --all) [--store URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from connector.auth.account import Account, wait_for_redirect
from connector.auth.oauth import new_state
from connector.auth.tokens import Token

__all__ = ["main"]

DEFAULT_PORT = 8765


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoho-connector auth", description="Connect a Zoho account; manage tokens.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("login", help="authorize in the browser and store the tokens")
    _connection_flag(p)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="loopback port of the redirect listener")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect")
    p.set_defaults(handler=_login)

    p = sub.add_parser("exchange", help="exchange a self-client grant code and store the tokens")
    _connection_flag(p)
    p.add_argument("--code", required=True)
    p.set_defaults(handler=_exchange)

    for name, handler, text in (
        ("status", _status, "show the stored token, secrets masked"),
        ("refresh", _refresh, "get a new access token now"),
        ("revoke", _revoke, "revoke the refresh token at Zoho and delete it"),
    ):
        p = sub.add_parser(name, help=text)
        _connection_flag(p)
        p.set_defaults(handler=handler)

    tokens = sub.add_parser("tokens", help="list or delete stored tokens").add_subparsers(dest="tokens", required=True)
    p = tokens.add_parser("list")
    p.add_argument("--store", help="token store URL (default: the user's SQLite store)")
    p.set_defaults(handler=_tokens_list)
    p = tokens.add_parser("delete")
    p.add_argument("id", nargs="?")
    p.add_argument("--all", action="store_true")
    p.add_argument("--store", help="token store URL (default: the user's SQLite store)")
    p.set_defaults(handler=_tokens_delete)

    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _connection_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connection", help="connection as JSON or @file (default: $ZOHO_CONNECTION)")


def _account(args: argparse.Namespace) -> Account:
    from connector.cli import _connection_argument
    from connector.connection import resolve_connection
    from connector.manifest import bundled_manifest

    definition = next(iter(bundled_manifest().connections.values()))
    return Account(resolve_connection(definition, _connection_argument(args.connection)), definition)


def _print(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _summary(token: Token) -> dict[str, Any]:
    summary = token.masked()
    if token.expires_at is not None:
        summary["expires_in_seconds"] = round(token.expires_at - time.time())
    return summary


def _login(args: argparse.Namespace) -> int:
    account = _account(args)
    redirect_uri = account.connection.redirect_uri or f"http://127.0.0.1:{args.port}/callback"
    state = new_state()
    print("Open this URL in a browser and approve access:\n", file=sys.stderr)
    print(account.authorize_url(redirect_uri=redirect_uri, state=state), file=sys.stderr)
    print(f"\nWaiting for Zoho to redirect to {redirect_uri} …", file=sys.stderr)
    redirect = wait_for_redirect(redirect_uri, state, timeout=args.timeout)
    token = account.exchange_code(
        redirect.code, redirect_uri=redirect_uri, accounts_server=redirect.accounts_server, location=redirect.location
    )
    _print({"connected": True, "token": _summary(token)})
    return 0


def _exchange(args: argparse.Namespace) -> int:
    token = _account(args).exchange_code(args.code, redirect_uri=None)
    _print({"connected": True, "token": _summary(token)})
    return 0


def _status(args: argparse.Namespace) -> int:
    account = _account(args)
    token = account.stored()
    _print(
        {
            "region": account.connection.region,
            "accounts_url": account.connection.accounts_url,
            "token": _summary(token) if token else None,
        }
    )
    return 0 if token else 3


def _refresh(args: argparse.Namespace) -> int:
    _print({"refreshed": True, "token": _summary(_account(args).refresh())})
    return 0


def _revoke(args: argparse.Namespace) -> int:
    _account(args).revoke()
    _print({"revoked": True})
    return 0


def _store(url: str | None) -> Any:
    from connector.auth.stores import open_store

    return open_store(url)


def _tokens_list(args: argparse.Namespace) -> int:
    _print([_summary(t) for t in _store(args.store).get_tokens()])
    return 0


def _tokens_delete(args: argparse.Namespace) -> int:
    store = _store(args.store)
    if args.all:
        store.delete_tokens()
    elif args.id:
        store.delete_token(args.id)
    else:
        print("give a token id, or --all", file=sys.stderr)
        return 2
    _print({"deleted": "all" if args.all else args.id})
    return 0
