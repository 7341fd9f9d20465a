"""The TLS context of the pooled HTTP clients: httpx's own, but with its CA certificates read at the first handshake.

httpx builds its verifying context when a client is made, and reading the CA bundle is most of that (≈ 25 ms of
every cold start), although a process whose calls are all plain http (the sandbox, a loopback proxy) never uses it.
This context is the one httpx would build for `verify=True` (`ssl.create_default_context` with the CA file or
directory named by SSL_CERT_FILE or SSL_CERT_DIR, read when the context is made, else certifi's bundle), and it
verifies from the first handshake on: it loads the CAs before it wraps any socket or BIO, and until then it trusts
nothing (CERT_REQUIRED with an empty store), so a path that skipped the load would fail closed, never open.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from typing import Any

__all__ = ["LazyCAContext"]


class LazyCAContext(ssl.SSLContext):
    """A client context (server certificate and host name checked) whose CA store is filled on first use."""

    _cafile: str | None
    _capath: str | None
    _loaded: bool
    _load_lock: threading.Lock

    def __new__(cls) -> LazyCAContext:
        context = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        # as ssl.create_default_context(purpose=SERVER_AUTH) sets it up, less its CA load
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        if sys.version_info >= (3, 13):
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:
            context.keylog_filename = keylog
        # as httpx.create_ssl_context(verify=True, trust_env=True) picks the CAs
        context._cafile = os.environ.get("SSL_CERT_FILE") or None
        context._capath = None if context._cafile else os.environ.get("SSL_CERT_DIR") or None
        context._loaded = False
        context._load_lock = threading.Lock()
        return context

    def load_cas(self) -> None:
        """Read the CA certificates, once; every wrap calls it first."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            if self._cafile or self._capath:
                self.load_verify_locations(cafile=self._cafile, capath=self._capath)
            else:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_cas()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_cas()
        return super().wrap_bio(*args, **kwargs)
