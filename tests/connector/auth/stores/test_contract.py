"""The contract every token store keeps: the six methods, the upsert rule, no duplicates, exact values, locks.

Runs over every store kind (see kinds.py); server kinds skip when their server is down (fail in CI).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connector.auth.stores.base import TokenStore
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError
from tests.connector.auth.stores.kinds import Kind, kind_params, prepared

FULL = Token(
    user_name="alice@example.com",
    client_id="1000.CLIENT",
    client_secret="secret-1",
    refresh_token="1000.refresh-1",
    access_token="1000.access-1",
    expires_at=1_700_000_000.25,
    redirect_url="https://example.com/callback",
    api_domain="https://www.zohoapis.eu",
    accounts_url="https://accounts.zoho.eu",
)


def test_protocol_is_implemented(store: TokenStore) -> None:
    assert isinstance(store, TokenStore)


def test_the_six_methods(store: TokenStore) -> None:
    assert store.get_tokens() == []
    assert store.find_token(FULL) is None
    assert store.find_token_by_id("nope") is None

    saved = store.save_token(FULL)
    assert saved.id
    assert saved == FULL.replace(id=saved.id)
    assert store.find_token(Token(user_name=FULL.user_name)) == saved
    assert store.find_token_by_id(saved.id) == saved
    assert store.get_tokens() == [saved]

    other = store.save_token(Token(user_name="bob", access_token="bob-access"))
    assert sorted(t.id or "" for t in store.get_tokens()) == sorted([saved.id, other.id or ""])

    store.delete_token(saved.id)
    store.delete_token(saved.id)  # absent: no error
    assert store.find_token_by_id(saved.id) is None
    assert store.get_tokens() == [other]

    store.save_token(FULL)
    store.delete_tokens()
    assert store.get_tokens() == []
    store.delete_tokens()  # empty: no error


def test_insert_keeps_a_given_id_and_makes_one_otherwise(store: TokenStore) -> None:
    given = store.save_token(Token(id="42", access_token="a"))
    made = store.save_token(Token(access_token="b"))
    assert given.id == "42"
    assert made.id and made.id != "42"


def test_upsert_1_by_user_name(store: TokenStore) -> None:
    first = store.save_token(FULL)
    again = store.save_token(Token(user_name=FULL.user_name, access_token="new", client_id="other", expires_at=5.0))
    assert again.id == first.id
    assert store.get_tokens() == [again]  # replaced, not merged
    assert again.refresh_token is None and again.client_id == "other"


def test_upsert_2_by_access_token(store: TokenStore) -> None:
    first = store.save_token(Token(access_token="1000.only-access"))
    again = store.save_token(Token(access_token="1000.only-access", expires_at=99.5, api_domain="d"))
    assert again.id == first.id
    assert store.get_tokens() == [again]


def test_upsert_3_by_refresh_or_grant_token_with_client(store: TokenStore) -> None:
    client = Token(client_id="c", client_secret="s")
    by_refresh = store.save_token(client.replace(refresh_token="r", access_token="a1"))
    refreshed = store.save_token(client.replace(refresh_token="r", access_token="a2", expires_at=10.0))
    assert refreshed.id == by_refresh.id

    by_grant = store.save_token(client.replace(grant_token="g"))
    exchanged = store.save_token(client.replace(grant_token="g", access_token="a3"))
    assert exchanged.id == by_grant.id
    assert len(store.get_tokens()) == 2

    # The same refresh token under another client (or secret) is another token.
    store.save_token(Token(refresh_token="r", client_id="c2", client_secret="s"))
    store.save_token(Token(refresh_token="r", client_id="c", client_secret="s2"))
    assert len(store.get_tokens()) == 4
    # Without the client, a refresh token alone does not match.
    store.save_token(Token(refresh_token="r"))
    assert len(store.get_tokens()) == 5


def test_upsert_4_by_id(store: TokenStore) -> None:
    first = store.save_token(Token(access_token="a"))
    assert first.id
    again = store.save_token(Token(id=first.id, access_token="b", api_domain="x"))
    assert again.id == first.id
    assert store.get_tokens() == [again]
    assert store.find_token(Token(id=first.id)) == again


def test_upsert_rule_order(store: TokenStore) -> None:
    alice = store.save_token(Token(user_name="alice", access_token="a"))
    bob = store.save_token(Token(user_name="bob", access_token="b"))
    # (1) before (2): alice's row, though nothing has access token "c".
    assert store.save_token(Token(user_name="alice", access_token="c")).id == alice.id
    # No row for carol: (2) matches bob's row by access token, which now belongs to carol.
    carol = store.save_token(Token(user_name="carol", access_token="b"))
    assert carol.id == bob.id
    assert {t.user_name for t in store.get_tokens()} == {"alice", "carol"}
    # find_token follows the same order.
    assert store.find_token(Token(user_name="alice", access_token="b")) == store.find_token_by_id(alice.id or "")
    assert store.find_token(Token(user_name="zed", access_token="b")) == carol
    assert store.find_token(Token(user_name="zed", access_token="zz")) is None


def test_a_save_that_would_duplicate_a_match_key_is_refused(store: TokenStore) -> None:
    store.save_token(Token(user_name="alice", access_token="sekrit-alice"))
    store.save_token(Token(user_name="bob", access_token="sekrit-bob"))
    with pytest.raises(ConnectionConfigError, match="same access token") as err:
        store.save_token(Token(user_name="alice", access_token="sekrit-bob"))
    assert "sekrit" not in str(err.value)  # ids, never values
    assert {(t.user_name, t.access_token) for t in store.get_tokens()} == {
        ("alice", "sekrit-alice"),
        ("bob", "sekrit-bob"),
    }


def test_never_a_duplicate_row(store: TokenStore) -> None:
    for _ in range(3):
        store.save_token(FULL)
        store.save_token(FULL.replace(user_name=None))
        store.save_token(Token(access_token="solo"))
    assert len(store.get_tokens()) == 2


def test_concurrent_saves_of_one_token_leave_one_row(store: TokenStore) -> None:
    def save(i: int) -> str | None:
        return store.save_token(FULL.replace(access_token=f"a{i}")).id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(save, range(40)))
    assert len(ids) == 1
    assert len(store.get_tokens()) == 1


def test_many_users_side_by_side(store: TokenStore) -> None:
    saved = [
        store.save_token(FULL.replace(user_name=f"user{i}", refresh_token=f"r{i}", access_token=f"a{i}"))
        for i in range(30)
    ]
    assert len({t.id for t in saved}) == 30
    for i, token in enumerate(saved):
        assert store.find_token(Token(user_name=f"user{i}")) == token
        assert store.find_token(Token(access_token=f"a{i}")) == token
        assert (
            store.find_token(Token(refresh_token=f"r{i}", client_id=FULL.client_id, client_secret="secret-1")) == token
        )
    store.delete_token(saved[3].id or "")
    assert store.find_token(Token(user_name="user3")) is None
    assert store.find_token(Token(user_name="user4")) == saved[4]


HOSTILE = [
    'it\'s "quoted" `back` \\ slash',
    "'; DROP TABLE oauthtoken; --",
    "Zoë 日本語 🙂 ‮rtl",
    "x" * 10_000,
    "é" * 10_000,
    "trailing space ",
    "%s %(x)s ? :name $1 {0}",
    "line\nbreak\ttab",
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_round_trip_verbatim(store: TokenStore, value: str) -> None:
    token = Token(
        user_name=value,
        client_id=value + "c",
        client_secret=value + "s",
        refresh_token=value + "r",
        access_token=value + "a",
        grant_token=value + "g",
        expires_at=1_234_567_890.123456,
        redirect_url=value,
        api_domain=value,
        accounts_url=value,
    )
    saved = store.save_token(token)
    assert saved == token.replace(id=saved.id)
    assert store.find_token(Token(user_name=value)) == saved
    assert store.find_token(Token(access_token=value + "a")) == saved
    assert store.get_tokens() == [saved]
    # Near misses do not match (MySQL's default collations would say "Bob" == "bob ").
    assert store.find_token(Token(user_name=value.upper() + " ")) is None
    assert store.save_token(Token(user_name=value + " ", access_token="other")).id != saved.id
    store.delete_token(saved.id or "")
    assert store.find_token_by_id(saved.id or "") is None


def test_hostile_ids(store: TokenStore) -> None:
    for id in ["'; DROP TABLE oauthtoken; --", "Zoë 🙂", "a" * 500]:
        saved = store.save_token(Token(id=id, access_token=id + "a"))
        assert saved.id == id
        assert store.find_token_by_id(id) == saved
        assert store.find_token_by_id(id + " ") is None
        store.delete_token(id + " ")
        store.delete_token(id)
        assert store.find_token_by_id(id) is None


def test_delete_tokens_removes_only_this_stores_tokens(store: TokenStore, kind: Kind, tmp_path: Path) -> None:
    # A second store of the same kind (its own table, key prefix, file or instance) must keep its tokens.
    with prepared(kind.name, tmp_path / "other") as other_kind:
        other = other_kind.open()
        other.save_token(Token(user_name="u1", access_token="other-store"))
        for i in range(5):
            store.save_token(Token(user_name=f"u{i}", access_token=f"a{i}"))
        store.delete_tokens()
        assert store.get_tokens() == []
        assert store.find_token(Token(user_name="u1")) is None
        store.save_token(Token(user_name="u1", access_token="again"))
        assert len(store.get_tokens()) == 1
        assert [t.access_token for t in other.get_tokens()] == ["other-store"]
        close = getattr(getattr(other, "inner", other), "close", None)
        if close is not None:
            close()


LONE = "\ud800"


@pytest.mark.parametrize(
    "token",
    [
        Token(user_name="bob" + LONE, access_token="a"),
        Token(user_name="bob", access_token="a" + LONE),
        Token(user_name="bob", api_domain="https://www.zohoapis.eu/" + LONE),
        Token(user_name="bob", organization_ids={"books": LONE}),
    ],
    ids=["user_name", "access_token", "api_domain", "organization_ids"],
)
def test_text_no_store_can_keep_is_a_config_error(store: TokenStore, token: Token) -> None:
    # Before: UnicodeEncodeError from SQLite, the SQL drivers and Redis; the file and memory stores kept it.
    with pytest.raises(ConnectionConfigError, match="lone UTF-16 surrogate"):
        store.save_token(token)
    with pytest.raises(ConnectionConfigError, match="lone UTF-16 surrogate"):
        store.find_token(token)
    assert store.get_tokens() == []


def test_ids_no_store_can_keep_are_a_config_error(store: TokenStore) -> None:
    for call in (store.find_token_by_id, store.delete_token):
        with pytest.raises(ConnectionConfigError, match="id is not valid text"):
            call("x" + LONE)


def test_organization_ids_are_kept_with_the_token(store: TokenStore) -> None:
    saved = store.save_token(FULL.replace(organization_ids={"books": "123", "inventory": "4567"}))
    assert saved.organization_ids == {"books": "123", "inventory": "4567"}
    assert store.find_token(Token(user_name=FULL.user_name)) == saved
    assert store.find_token_by_id(saved.id or "") == saved
    updated = store.save_token(saved.replace(organization_ids={**saved.organization_ids, "crm": "9"}))
    assert (store.find_token_by_id(saved.id or "") or Token()).organization_ids == {
        "books": "123",
        "inventory": "4567",
        "crm": "9",
    }
    assert updated.id == saved.id
    assert store.save_token(Token(user_name="no-orgs", access_token="x")).organization_ids == {}
    assert (store.find_token(Token(user_name="no-orgs")) or FULL).organization_ids == {}


def test_lock_is_exclusive_and_times_out(store: TokenStore) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.lock("token-1"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(TimeoutError), store.lock("token-1", timeout=0.05):
            pass
        with store.lock("token-2", timeout=5):  # other keys are free
            pass
    finally:
        release.set()
        thread.join()
    with store.lock("token-1", timeout=5):
        pass


@pytest.mark.parametrize("name", ["file", "sqlite", "encrypted-sqlite"])
def test_files_are_private(name: str, tmp_path: Path) -> None:
    with prepared(name, tmp_path / "home") as kind:
        store = kind.open()
        store.save_token(FULL)
        with store.lock("k"):
            pass
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 3  # the store, its write lock or WAL, the key lock
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for path in (p for p in (tmp_path / "home").rglob("*") if p.is_dir()):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


@pytest.mark.parametrize("name", ["file", "sqlite", "encrypted-sqlite"])
def test_existing_files_with_wider_permissions_are_made_private(name: str, tmp_path: Path) -> None:
    with prepared(name, tmp_path / "home") as kind:
        store = kind.open()
        store.save_token(FULL)
        with store.lock("k"):
            pass
        close = getattr(getattr(store, "inner", store), "close", None)
        if close is not None:
            close()
        # Someone (an older version, a copy, a umask of 0) left them world-readable.
        for path in (tmp_path / "home").rglob("*"):
            os.chmod(path, 0o777 if path.is_dir() else 0o644)
        again = kind.open()
        assert again.find_token(Token(user_name=FULL.user_name)) is not None
        with again.lock("k"):
            pass
    # The files that hold tokens (lock files are empty, and tightened when next taken), and the directories.
    files = [p for p in (tmp_path / "home").rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert {p.name for p in files} >= ({"tokens.json"} if name == "file" else {"tokens.db", "tokens.db-wal"})
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for path in (p for p in (tmp_path / "home").rglob("*") if p.is_dir()):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


@pytest.mark.parametrize("name", kind_params(("sqlite", "mariadb", "postgresql")))
def test_tables_from_before_organization_ids_get_the_column(name: str, tmp_path: Path) -> None:
    with prepared(name, tmp_path) as kind:
        store = kind.open()
        saved = store.save_token(FULL)
        _drop_column(store, "organization_ids")  # the table as an older version made it
        again = kind.open()
        assert again.find_token(Token(user_name=FULL.user_name)) == saved
        again.save_token(saved.replace(organization_ids={"books": "1"}))
        assert (kind.open().find_token_by_id(saved.id or "") or FULL).organization_ids == {"books": "1"}


def _drop_column(store: TokenStore, column: str) -> None:
    from connector.auth.stores.sql import SqlStore
    from connector.auth.stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        conn.execute(f'ALTER TABLE "{store.table}" DROP COLUMN {column}')
        conn.commit()
        conn.close()
        store.close()
    else:
        assert isinstance(store, SqlStore)
        import sqlalchemy as sa

        with store._engine.begin() as sa_conn:
            sa_conn.execute(sa.text(f"ALTER TABLE {store.table_name} DROP COLUMN {column}"))
        store.close()
