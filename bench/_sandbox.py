"""The bundled sandbox as a separate process, so a benchmark measures only the client's time and memory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
PIDS: dict[str, int] = {}
"""The process id of each running sandbox, by base URL."""


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
        PIDS[base] = process.pid
        yield base
    finally:
        PIDS.pop(base, None)
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(base: str) -> float:
    """CPU time (user + system) the sandbox at `base` has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{PIDS[base]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def access_connection(base: str) -> dict[str, object]:
    """A connection with a fresh access token minted by the sandbox (no token store involved)."""
    tokens = httpx.post(f"{base}/__sandbox/tokens", json={}, timeout=30).json()
    return {"access_token": tokens["access_token"], "expires_in": 3600, "accounts_url": base, "api_domain": base}


def seed(base: str, module: str, count: int) -> None:
    httpx.post(f"{base}/__sandbox/seed", json={"module": module, "count": count}, timeout=120).raise_for_status()
