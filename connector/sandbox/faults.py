"""Injected failures: 429s, CRM's HTTP 400 throttle, 5xx and slow answers, on demand or at random.

Clients' retry, backoff and token-refresh paths can only be tested against a server that misbehaves on cue.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from starlette.responses import JSONResponse

FaultKind = Literal["429", "throttle", "5xx"]
Product = Literal["crm", "books", "accounts"]

CRM_THROTTLE = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}


@dataclass
class FaultConfig:
    """What to break. `next_n` and `until` use `kind`; the `rate_*` draws apply on every call.

    Fields map one to one onto the JSON of POST /__sandbox/faults (plus `for_seconds`, turned into `until`).
    """

    kind: FaultKind = "429"
    next_n: int = 0  # answer the next N API calls with `kind`
    until: float | None = None  # ... or every API call until this clock time
    rate_429: float = 0.0  # fraction of API calls answered 429
    rate_5xx: float = 0.0
    rate_throttle: float = 0.0
    retry_after: int | None = None  # seconds in Retry-After on 429s; None sends no header (Zoho's usual)
    status_5xx: int = 500
    slow_ms: float = 0.0  # delay before every API call is answered
    targets: tuple[Product, ...] = ("crm", "books")
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    @classmethod
    def from_json(cls, data: dict[str, Any], now: float) -> FaultConfig:
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(data) - known - {"for_seconds"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        if "targets" in kwargs:
            kwargs["targets"] = tuple(kwargs["targets"])
        if data.get("for_seconds") is not None:
            kwargs["until"] = now + float(data["for_seconds"])
        config = cls(**kwargs)
        if config.kind not in ("429", "throttle", "5xx"):
            raise ValueError(f"unknown fault kind {config.kind!r}")
        return config

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["targets"] = list(self.targets)
        return data

    def pick(self, product: Product, now: float) -> FaultKind | None:
        """Which fault, if any, this call gets; consumes one of `next_n`."""
        if product not in self.targets:
            return None
        if self.next_n > 0:
            self.next_n -= 1
            return self.kind
        if self.until is not None and now < self.until:
            return self.kind
        for kind, rate in (("429", self.rate_429), ("throttle", self.rate_throttle), ("5xx", self.rate_5xx)):
            if rate > 0 and self._rng.random() < rate:
                return kind  # type: ignore[return-value]
        return None


def fault_response(kind: FaultKind, product: Product, config: FaultConfig) -> JSONResponse:
    """The body each product sends for `kind`, per zoho-api.md (§1 throttle, §3 and §4 error shapes)."""
    headers = {"Retry-After": str(config.retry_after)} if kind == "429" and config.retry_after is not None else None
    if kind == "throttle":
        if product == "accounts":
            body: dict[str, Any] = {
                "error": "Access Denied",
                "error_description": "Token creation throttle limit reached. "
                "Please reuse the valid tokens you currently have.",
            }
            return JSONResponse(body, status_code=400)
        return JSONResponse(CRM_THROTTLE, status_code=400)
    if kind == "429":
        if product == "books":
            # Code 45 is third-party knowledge only (zoho-api.md §4).
            body = {"code": 45, "message": "You have made too many requests. Please try again after some time."}
        else:
            body = {
                "code": "TOO_MANY_REQUESTS",
                "details": {},
                "message": "You have made too many requests. Please try again after some time.",
                "status": "error",
            }
        return JSONResponse(body, status_code=429, headers=headers)
    if product == "books":
        return JSONResponse({"code": 1000, "message": "Internal error"}, status_code=config.status_5xx)
    body = {"code": "INTERNAL_ERROR", "details": {}, "message": "Internal server error occurred.", "status": "error"}
    return JSONResponse(body, status_code=config.status_5xx)
