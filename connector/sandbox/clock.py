"""Zoho's timestamp formats, computed from the injectable clock so tests control every date the sandbox writes."""

from __future__ import annotations

from datetime import UTC, datetime


def crm_time(ts: float) -> str:
    """CRM's ISO 8601 with a colon offset, e.g. 2026-01-01T00:00:00+00:00."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def books_time(ts: float) -> str:
    """Books' ISO 8601 with a bare offset, e.g. 2016-06-11T17:38:06+0000."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
