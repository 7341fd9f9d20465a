"""Engine tests run real workers against the sandbox. Celery reads its queue and result backend from the
environment when connector.engines.celery is imported, so they are set here, before any test module imports it:
a queue of this run's own (nothing left over from another run is consumed) and a Redis database of its own."""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("ZOHO_CELERY_QUEUE", f"zoho-test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("ZOHO_CELERY_BACKEND", "redis://127.0.0.1:6379/13")
