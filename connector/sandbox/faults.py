"""Injected failures: 429s, CRM's HTTP 400 throttle, 5xx, lost answers and slow answers, on demand or at random.

Clients' retry, backoff and token-refresh paths can only be tested against a server that misbehaves on cue. A
`lost` answer is the one failure where the call was carried out: the request is served (a create creates), then
the connection closes before the body arrives, so the client cannot tell whether it acted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from starlette.responses import JSONResponse

FaultKind = Literal["429", "throttle", "5xx", "lost"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "throttle", "5xx", "lost")
Product = Literal["crm", "books", "accounts", "store"]

CRM_THROTTLE = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}


# POST /__sandbox/faults keys are the CLI's fault flags without the dashes (`--fail-next` is `fail_next`), mapped
# to FaultConfig fields. The field names themselves (`next_n`, `kind`, `for_seconds`, …) stay accepted as aliases.
JSON_KEYS = {
    "fail_kind": "kind",
    "fail_next": "next_n",
    "fail_for_seconds": "for_seconds",
    "fail_rate_429": "rate_429",
    "fail_rate_5xx": "rate_5xx",
    "fail_rate_throttle": "rate_throttle",
    "retry_after": "retry_after",
    "status_5xx": "status_5xx",
    "slow_ms": "slow_ms",
    "slow_reply_ms": "slow_reply_ms",
    "fault_targets": "targets",
    "fault_seed": "seed",
}


@dataclass
class FaultConfig:
    """What to break. `next_n` and `until` use `kind`; the `rate_*` draws apply on every call.

    Built from the CLI flags or the JSON of POST /__sandbox/faults, whose keys are in JSON_KEYS.
    """

    kind: FaultKind = "429"
    next_n: int = 0  # answer the next N API calls with `kind`
    until: float | None = None  # ... or every API call until this clock time
    rate_429: float = 0.0  # fraction of API calls answered 429
    rate_5xx: float = 0.0
    rate_throttle: float = 0.0
    # seconds in Retry-After on injected 429s and 5xx (a 503 "come back in N s"); None sends no header (Zoho's usual)
    retry_after: int | None = None
    status_5xx: int = 500
    slow_ms: float = 0.0  # every API call is answered this long after it arrived (a server's response time)
    # delay after every API call was handled, before its answer goes out: a client that gives up first has lost
    # the answer to a call that acted (a create whose response never came)
    slow_reply_ms: float = 0.0
    targets: tuple[Product, ...] = ("crm", "books")
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    @classmethod
    def from_json(cls, data: dict[str, Any], now: float) -> FaultConfig:
        known = {f.name for f in fields(cls) if not f.name.startswith("_")} | {"for_seconds"}
        settings: dict[str, Any] = {}
        for key, value in data.items():
            name = JSON_KEYS.get(key, key)
            if name not in known:
                raise ValueError(f"unknown fault settings: {key!r}; use {sorted(JSON_KEYS)}")
            settings[name] = value
        if "targets" in settings:
            targets = settings["targets"]
            settings["targets"] = tuple(targets.split(",") if isinstance(targets, str) else targets)
            if not set(settings["targets"]) <= {"crm", "books", "accounts", "store"}:
                raise ValueError(f"unknown fault targets {settings['targets']}: use crm, books, accounts, store")
        for name, value in settings.items():
            numeric = name not in {"kind", "targets"} and value is not None
            if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"fault setting {name!r} must be a number, not {value!r}")
        for_seconds = settings.pop("for_seconds", None)
        if for_seconds is not None:
            settings["until"] = now + float(for_seconds)
        config = cls(**settings)
        if config.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {config.kind!r}")
        return config

    def to_json(self) -> dict[str, Any]:
        """The settings under their JSON_KEYS names, plus `until` (a window's end on the sandbox clock)."""
        out: dict[str, Any] = {}
        for key, name in JSON_KEYS.items():
            if name != "for_seconds":
                value = getattr(self, name)
                out[key] = list(value) if name == "targets" else value
        out["until"] = self.until
        return out

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
    from starlette.responses import JSONResponse  # lazily: the CLI parses fault flags without starlette

    retry_after = config.retry_after is not None and kind in ("429", "5xx")
    headers = {"Retry-After": str(config.retry_after)} if retry_after else None
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
        return JSONResponse({"code": 1000, "message": "Internal error"}, status_code=config.status_5xx, headers=headers)
    body = {"code": "INTERNAL_ERROR", "details": {}, "message": "Internal server error occurred.", "status": "error"}
    return JSONResponse(body, status_code=config.status_5xx, headers=headers)
