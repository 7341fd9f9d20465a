"""open_store: URL schemes, the default location, encryption by env var, errors that name no secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connector.auth.stores import VALID_URLS, default_home, open_store
from connector.auth.stores.base import TokenStore
from connector.auth.stores.encrypted import EncryptedStore
from connector.auth.stores.file import FileStore
from connector.auth.stores.memory import MemoryStore
from connector.auth.stores.sqlite import SqliteStore
from connector.auth.tokens import Token
from connector.errors import ConnectionConfigError, ConnectorError, TransientError
from tests.connector.auth.stores.kinds import TEST_KEY


def test_local_schemes(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:", env={}), MemoryStore)
    file_store = open_store(f"file://{tmp_path}/t.json", env={})
    assert isinstance(file_store, FileStore) and file_store.path == tmp_path / "t.json"
    sqlite_store = open_store(f"sqlite://{tmp_path}/t%20x.db?table=my_tokens", env={})
    assert isinstance(sqlite_store, SqliteStore)
    assert sqlite_store.path == tmp_path / "t x.db" and sqlite_store.table == "my_tokens"


@pytest.mark.parametrize("url", ["file:relative.json", "sqlite://host/x.db", "file://example.com/x.json"])
def test_local_paths_must_be_absolute(url: str) -> None:
    with pytest.raises(ConnectionConfigError, match="absolute path"):
        open_store(url, env={})


def test_default_is_sqlite_in_the_home_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_store(None, env={"ZOHO_CONNECTOR_HOME": str(home)})
    assert isinstance(store, SqliteStore) and store.path == home / "tokens.db"
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    store.save_token(Token(access_token="a"))
    assert stat.S_IMODE(os.stat(home / "tokens.db").st_mode) == 0o600


def test_default_home_honours_xdg_then_home(tmp_path: Path) -> None:
    assert default_home({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "zoho-connector"
    assert default_home({"HOME": str(tmp_path)}) == tmp_path / ".local/share/zoho-connector"
    assert default_home({"ZOHO_CONNECTOR_HOME": "/x", "XDG_DATA_HOME": "/y"}) == Path("/x")


def test_the_key_wraps_any_store_with_encryption(tmp_path: Path) -> None:
    store = open_store("memory:", env={"ZOHO_CONNECTOR_TOKEN_KEY": TEST_KEY})
    assert isinstance(store, EncryptedStore) and isinstance(store.inner, MemoryStore)


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ConnectionConfigError) as err:
        open_store("ftp://user:hunter2@host/x", env={})
    assert "'ftp'" in err.value.message
    assert all(v in err.value.message for v in VALID_URLS)
    assert "hunter2" not in err.value.message


ALLOW = {"ZOHO_CONNECTOR_ALLOW_PYTHON_STORES": "1"}


def test_python_scheme_checks_the_protocol() -> None:
    store = open_store("python:tests.connector.auth.stores.user_store:UserStore", env=ALLOW)
    assert isinstance(store, TokenStore)
    with pytest.raises(ConnectionConfigError, match="not a TokenStore: it lacks save_token"):
        open_store("python:tests.connector.auth.stores.user_store:NotAStore", env=ALLOW)
    with pytest.raises(ConnectionConfigError, match="cannot import"):
        open_store("python:no_such_module_xyz:Store", env=ALLOW)
    with pytest.raises(ConnectionConfigError, match=r"package\.module:ClassName"):
        open_store("python:JustAName", env=ALLOW)


def test_python_stores_are_off_unless_the_operator_enables_them() -> None:
    url = "python:tests.connector.auth.stores.user_store:UserStore"
    for env in ({}, {"ZOHO_CONNECTOR_ALLOW_PYTHON_STORES": "0"}):
        with pytest.raises(ConnectionConfigError, match="ZOHO_CONNECTOR_ALLOW_PYTHON_STORES=1") as err:
            open_store(url, env=env)
        assert err.value.message.startswith("token_store")
    assert isinstance(open_store(url, env={}, allow_python_stores=True), TokenStore)
    with pytest.raises(ConnectionConfigError, match="off unless"):  # the argument wins over the environment
        open_store(url, env=ALLOW, allow_python_stores=False)


@pytest.mark.parametrize("target", ["os:abort", "sys:exit", "os:fork", "os:getcwd", "builtins:print"])
def test_a_python_store_must_name_a_class_and_is_never_called_otherwise(target: str) -> None:
    # Before the fix, `os:abort` was called (killing the process) and `os:fork` forked it.
    with pytest.raises(ConnectionConfigError, match="is not a class"):
        open_store(f"python:{target}", env=ALLOW)


def test_a_python_store_class_that_fails_to_build_is_a_config_error() -> None:
    with pytest.raises(ConnectionConfigError, match="cannot create the token store"):
        open_store("python:tests.connector.auth.stores.user_store:BrokenStore", env=ALLOW)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://[::1/x.db",
        "file://[bad/x.json",
        "redis://127.0.0.1:notaport/0",
        "redis://[::1/0",
        "mysql://root@127.0.0.1:99999999/test",
        "postgresql://u:hunter2@[::1/db",
    ],
)
def test_an_unparsable_token_store_url_is_a_config_error_naming_the_field(url: str) -> None:
    with pytest.raises(ConnectionConfigError) as err:
        store = open_store(url, env={})
        store.get_tokens()  # some drivers parse the host and port only when they connect
    assert "token_store" in err.value.message or "token store" in err.value.message
    assert "hunter2" not in err.value.message


@pytest.mark.parametrize("table", ["x; DROP TABLE oauthtoken", "1abc", "a" * 64, "", "naïve"])
def test_table_names_are_validated(table: str, tmp_path: Path) -> None:
    with pytest.raises(ConnectionConfigError, match="invalid table name"):
        open_store(f"sqlite://{tmp_path}/t.db?table={table}", env={})
    with pytest.raises(ConnectionConfigError, match="invalid table name"):
        open_store(f"postgresql://u:hunter2@127.0.0.1:1/db?table={table}", env={})


def test_redis_prefix_is_validated() -> None:
    with pytest.raises(ConnectionConfigError, match="prefix"):
        open_store("redis://127.0.0.1:6379/0?prefix=a*b", env={})


def test_unreachable_server_errors_hide_the_password() -> None:
    for url in ["postgresql://user:hunter2@127.0.0.1:1/db?table=t", "mysql://user:hunter2@127.0.0.1:1/db"]:
        store = open_store(url, env={})
        with pytest.raises(ConnectorError) as err:
            store.find_token(Token(access_token="sekrit"))
        assert "user:***@127.0.0.1:1" in str(err.value)
        assert err.value.__cause__ is None and err.value.__suppress_context__
        assert "hunter2" not in str(err.value) and "sekrit" not in str(err.value)
    store = open_store("redis://:hunter2@127.0.0.1:1/0", env={})
    with pytest.raises(TransientError) as err:
        store.get_tokens()
    assert "hunter2" not in str(err.value)


def test_a_missing_driver_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; sys.modules['cryptography.fernet'] = None\n"
        "from connector.auth.stores import open_store\n"
        "from connector.errors import ConnectionConfigError, ConnectorError, TransientError\n"
        "for url, env in [('redis://h:1/0', {}), ('memory:', {'ZOHO_CONNECTOR_TOKEN_KEY': 'k'})]:\n"
        "    try: open_store(url, env=env)\n"
        "    except ConnectionConfigError as e: print(e.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "zoho-connector[redis]" in out and "zoho-connector[encryption]" in out


def test_importing_the_stores_loads_no_driver() -> None:
    code = (
        "import sys, connector.auth.stores, connector.auth.refresh\n"
        "heavy = {'sqlalchemy', 'pymysql', 'psycopg', 'redis', 'cryptography', 'sqlite3', 'anyio'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_existing_wider_home_directory_and_database_are_made_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "tokens.db").touch()
    os.chmod(home / "tokens.db", 0o644)
    store = open_store(None, env={"ZOHO_CONNECTOR_HOME": str(home)})
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    store.save_token(Token(access_token="a"))
    assert stat.S_IMODE(os.stat(home / "tokens.db").st_mode) == 0o600


def test_a_wider_file_that_cannot_be_tightened_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8.9's other outcome: when the mode cannot be changed (another owner, a read-only mount), the store is
    refused with the path and the command that fixes it, rather than used while others can read the tokens."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.chmod(home, 0o700)
    database = home / "tokens.db"
    database.touch()
    os.chmod(database, 0o644)

    def refuse(path: Any, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    store = open_store(None, env={"ZOHO_CONNECTOR_HOME": str(home)})
    with pytest.raises(ConnectionConfigError) as err:
        store.save_token(Token(access_token="a"))
    assert str(database) in err.value.message and "chmod 600" in err.value.message
    assert "readable by other users" in err.value.message
