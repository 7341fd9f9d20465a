"""A stateful local emulator of Zoho Accounts, CRM v8 and Books v3, for tests, demos and benchmarks without Zoho.

Needs the `sandbox` extra (starlette, uvicorn, python-multipart).
"""

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
