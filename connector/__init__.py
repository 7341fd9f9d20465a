"""zoho-connector: declarative Zoho CRM, Books and Finance actions for workflow engines, Python and the shell.

    from connector import Connector
    connector = Connector.load()
    connector.run("crmGetRecords", {"recordType": "Leads", "fields": ["Last_Name"]}, connection={...})

Names are imported on first use, so `import connector` stays cheap for short-lived processes.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "ConnectionConfigError",
    "Connector",
    "ConnectorError",
    "InputValidationError",
    "ManifestError",
    "RateLimitedError",
    "TransientError",
    "ZohoAPIError",
    "__version__",
]

_LAZY = {
    "Connector": "connector.runner",
    **{name: "connector.errors" for name in __all__ if name.endswith("Error")},
}

if TYPE_CHECKING:
    from connector.errors import (
        AuthenticationError,
        ConnectionConfigError,
        ConnectorError,
        InputValidationError,
        ManifestError,
        RateLimitedError,
        TransientError,
        ZohoAPIError,
    )
    from connector.runner import Connector


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'connector' has no attribute {name!r}")
    return getattr(import_module(module), name)
