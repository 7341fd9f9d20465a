"""EncryptedStore: no secret in plain text at rest, a wrong key is a clear error, old plain rows still read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connector.auth.stores import open_store
from connector.auth.stores.encrypted import EncryptedStore, TokenIntegrityError
from connector.auth.stores.memory import MemoryStore
from connector.auth.stores.sqlite import SqliteStore
from connector.auth.tokens import SECRET_FIELDS, Token
from connector.errors import ConnectionConfigError
from tests.connector.auth.stores.kinds import TEST_KEY

OTHER_KEY = "0pBTBj6Tq6Tz7H2PZ3sZ3qUQ1lhjH4Wdq2X3a6kQk0w="

TOKEN = Token(
    user_name="alice",
    client_id="1000.CLIENTID",
    client_secret="CLIENT-SECRET-7f3a",
    refresh_token="1000.REFRESH-91bd",
    access_token="1000.ACCESS-55c2",
    grant_token="1000.GRANT-0e11",
    expires_at=123.0,
)


def test_secrets_are_not_stored_in_plain_text(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/t.db", env={"ZOHO_CONNECTOR_TOKEN_KEY": TEST_KEY})
    saved = store.save_token(TOKEN)
    assert store.find_token(Token(access_token=TOKEN.access_token)) == saved == TOKEN.replace(id=saved.id)

    raw = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*") if p.is_file())
    for f in SECRET_FIELDS:
        assert getattr(TOKEN, f).encode() not in raw, f
    assert b"alice" in raw  # only the secrets are encrypted

    rows = sqlite3.connect(tmp_path / "t.db").execute("SELECT client_secret, access_token FROM oauthtoken").fetchall()
    assert all(value.startswith("zcenc2:") for value in rows[0])


def test_each_upsert_branch_matches_through_the_digests() -> None:
    store = EncryptedStore(MemoryStore(), TEST_KEY)
    first = store.save_token(TOKEN.replace(user_name=None))
    by_access = store.save_token(Token(access_token=TOKEN.access_token, client_id="x"))
    assert by_access.id == first.id
    by_refresh = store.save_token(
        Token(client_id="x", client_secret="s", refresh_token="r", access_token=TOKEN.access_token)
    )
    assert by_refresh.id == first.id
    assert store.save_token(Token(client_id="x", client_secret="s", refresh_token="r")).id == first.id
    assert len(store.get_tokens()) == 1
    # Ciphertexts differ on every save, so the inner store alone could not have matched these.
    assert (
        store.inner.get_tokens()[0].refresh_token
        != EncryptedStore(MemoryStore(), TEST_KEY)._seal(Token(refresh_token="r")).refresh_token
    )


def test_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/t.db"
    open_store(url, env={"ZOHO_CONNECTOR_TOKEN_KEY": TEST_KEY}).save_token(TOKEN)
    wrong = open_store(url, env={"ZOHO_CONNECTOR_TOKEN_KEY": OTHER_KEY})
    for call in (
        lambda: wrong.get_tokens(),
        lambda: wrong.find_token(Token(user_name="alice")),
        lambda: wrong.save_token(Token(user_name="bob", access_token="b")),
    ):
        with pytest.raises(ConnectionConfigError, match="ZOHO_CONNECTOR_TOKEN_KEY does not match") as err:
            call()
        assert not any(getattr(TOKEN, f) in str(err.value) for f in SECRET_FIELDS)
        assert TEST_KEY not in str(err.value) and OTHER_KEY not in str(err.value)


def test_tampered_ciphertext_is_the_same_clear_error() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, TEST_KEY)
    saved = store.save_token(TOKEN)
    row = inner.get_tokens()[0]
    inner.save_token(row.replace(access_token=(row.access_token or "")[:-8] + "AAAAAAAA"))
    with pytest.raises(ConnectionConfigError, match="does not match"):
        store.find_token_by_id(saved.id or "")


@pytest.mark.parametrize("key", ["", "short", "x" * 44])
def test_an_invalid_key_says_how_to_make_one(key: str) -> None:
    with pytest.raises(ConnectionConfigError, match=r"not a valid Fernet key.*generate_key"):
        EncryptedStore(MemoryStore(), key)


def test_plain_rows_from_before_encryption_are_read_and_encrypted_on_save(tmp_path: Path) -> None:
    plain = SqliteStore(tmp_path / "t.db")
    old = plain.save_token(TOKEN)
    store = EncryptedStore(plain, TEST_KEY)
    assert (
        store.find_token(
            Token(refresh_token=TOKEN.refresh_token, client_id="1000.CLIENTID", client_secret=TOKEN.client_secret)
        )
        == old
    )
    again = store.save_token(TOKEN.replace(access_token="1000.ACCESS-new"))
    assert again.id == old.id
    assert (plain.find_token_by_id(old.id or "") or Token()).access_token != "1000.ACCESS-new"
    assert len(plain.get_tokens()) == 1


FULL = TOKEN.replace(
    accounts_url="https://accounts.zoho.eu",
    api_domain="https://www.zohoapis.eu",
    redirect_url="http://127.0.0.1:8765/callback",
    organization_ids={"books": "123"},
)


@pytest.mark.parametrize(
    "change",
    [
        {"accounts_url": "https://evil.example.com"},
        {"api_domain": "https://evil.example.com"},
        {"expires_at": 9_999_999_999.0},
        {"user_name": "mallory"},
        {"client_id": "1000.OTHER"},
        {"redirect_url": "https://evil.example.com/cb"},
        {"organization_ids": {"books": "666"}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_changed_plain_column_is_refused(change: dict[str, object], tmp_path: Path) -> None:
    # A writer without the key edits the plain columns of the row, e.g. to send the refresh to its own listener.
    plain = SqliteStore(tmp_path / "t.db")
    store = EncryptedStore(plain, TEST_KEY)
    saved = store.save_token(FULL)
    row = plain.find_token_by_id(saved.id or "")
    assert row is not None
    plain.save_token(row.replace(**change))
    for call in (
        lambda: store.find_token_by_id(saved.id or ""),
        lambda: store.find_token(Token(access_token=TOKEN.access_token)),
        lambda: store.get_tokens(),
    ):
        with pytest.raises(TokenIntegrityError, match="fails its integrity check") as err:
            call()
        assert isinstance(err.value, ConnectionConfigError)
        assert not any(getattr(TOKEN, f) in str(err.value) for f in SECRET_FIELDS)


def test_sealed_secrets_cannot_be_moved_to_another_row_or_mixed_with_plain_ones() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, TEST_KEY)
    alice = store.save_token(FULL)
    bob = store.save_token(
        FULL.replace(user_name="bob", access_token="1000.B", refresh_token="1000.RB", grant_token=None)
    )
    assert bob.id != alice.id
    alice_row, bob_row = (inner.find_token_by_id(t.id or "") for t in (alice, bob))
    assert alice_row is not None and bob_row is not None
    inner.save_token(bob_row.replace(refresh_token=alice_row.refresh_token))  # alice's sealed token in bob's row
    with pytest.raises(TokenIntegrityError):
        store.find_token_by_id(bob.id or "")
    inner.save_token(alice_row.replace(client_secret="known-plain-secret"))  # downgrade one field to plain text
    with pytest.raises(TokenIntegrityError):
        store.find_token_by_id(alice.id or "")


def test_an_untouched_row_still_reads_and_resaves(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/t.db", env={"ZOHO_CONNECTOR_TOKEN_KEY": TEST_KEY})
    saved = store.save_token(FULL)
    assert store.find_token(Token(user_name="alice")) == saved == FULL.replace(id=saved.id)
    moved = store.save_token(saved.replace(expires_at=456.5, organization_ids={"books": "1", "crm": "2"}))
    assert store.find_token_by_id(saved.id or "") == moved
