"""A stateful local emulator of Zoho Accounts, CRM v8 and Books v3, for tests, demos and benchmarks without Zoho.

Starlette, uvicorn and python-multipart come with a plain install. Names are imported on first use, so importing
this package (as `zoho-connector sandbox --help` does) does not load starlette.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.sandbox.app import create_app
    from connector.sandbox.faults import FaultConfig
    from connector.sandbox.server import main, serve, serve_in_thread
    from connector.sandbox.state import (
        BOOKS_ORG_ID,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        FieldDef,
        Options,
        SandboxState,
    )

_HOMES = {
    "create_app": "connector.sandbox.app",
    "FaultConfig": "connector.sandbox.faults",
    "main": "connector.sandbox.server",
    "serve": "connector.sandbox.server",
    "serve_in_thread": "connector.sandbox.server",
    "BOOKS_ORG_ID": "connector.sandbox.state",
    "DEFAULT_CLIENT_ID": "connector.sandbox.state",
    "DEFAULT_CLIENT_SECRET": "connector.sandbox.state",
    "FieldDef": "connector.sandbox.state",
    "Options": "connector.sandbox.state",
    "SandboxState": "connector.sandbox.state",
}

__all__ = [
    "BOOKS_ORG_ID",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "FaultConfig",
    "FieldDef",
    "Options",
    "SandboxState",
    "create_app",
    "main",
    "serve",
    "serve_in_thread",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'connector.sandbox' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value
