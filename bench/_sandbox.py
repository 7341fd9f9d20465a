"""The bundled sandbox as a separate process, so a benchmark measures only the client's time and memory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


@contextmanager
def sandbox_process(*flags: str) -> Iterator[str]:
    """`zoho-connector sandbox --port 0 …` in the background; yields its base URL."""
    process = subprocess.Popen(
        [str(BIN / "zoho-connector"), "sandbox", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the sandbox did not start: {base!r}")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def access_connection(base: str) -> dict[str, object]:
    """A connection with a fresh access token minted by the sandbox (no token store involved)."""
    tokens = httpx.post(f"{base}/__sandbox/tokens", json={}, timeout=30).json()
    return {"access_token": tokens["access_token"], "expires_in": 3600, "accounts_url": base, "api_domain": base}


def seed(base: str, module: str, count: int) -> None:
    httpx.post(f"{base}/__sandbox/seed", json={"module": module, "count": count}, timeout=120).raise_for_status()
