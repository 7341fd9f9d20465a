"""An action's declared output: its data rebuilt from Zoho's answer (`result.output` in the action file).

    result:
      output:
        contactId: ${answer.data.0.details.Contacts.id}
        accountId: ${answer.data.0.details.Accounts.id?}     null where Zoho made no account
        details: ${answer.data.0.details}

References, a trailing `?`, `$map` and `$json` are those of automation inputs (connector/automations.py), with one
name: `answer`, the data Zoho answered (and `item` inside a `$map`). An answer without what the output names is not
the success the action expects: when the product's envelope reads an error code in it (crm-oas documents a 202
carrying ID_ALREADY_CONVERTED), it is Zoho's error (ZohoAPIError, with Zoho's code, message and details); otherwise
a BadResponseError. Neither is retried here: the request reached Zoho, so both say it may have acted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from connector.errors import BadResponseError, ZohoAPIError

if TYPE_CHECKING:
    from connector._flow import CallPolicy, Reply

__all__ = ["problems", "shape"]

_REFERENCE = re.compile(r"\$\{([^{}]*)\}")


def problems(output: Any) -> list[str]:
    """What is wrong with an output template, checked when the manifest is loaded: every `${…}` must be a whole
    string naming `answer` (or `item` inside a `$map`'s `to`)."""
    from connector import _reshape

    scopes = _reshape.map_scopes(output)
    found = []
    for pointer, text in _strings(output, ""):
        match = _REFERENCE.fullmatch(text)
        root = match.group(1).split(".")[0] if match else None
        in_map = any(pointer == s or pointer.startswith(s + "/") for s in scopes)
        if root != "answer" and not (root == "item" and in_map):
            allowed = "${answer…}" + (" or ${item…}" if in_map else "")
            found.append(f"result.output{pointer}: {text!r} must be one whole reference, {allowed}")
    return found


def shape(output: Any, answer: Any, reply: Reply, policy: CallPolicy) -> Any:
    """The output built from `answer` (the reply's data). Raises ZohoAPIError or BadResponseError when the answer
    lacks what the output names."""
    from connector import automations

    try:
        return automations.resolve(output, {"answer": answer})
    except automations.AutomationError as exc:
        missing = "; ".join(v.message for v in exc.violations)
    from connector import _response
    from connector._redact import redact_value

    response, body = reply.response, redact_value(reply.body)
    code, message, details = policy.envelope.error(body)
    if code is not None:
        raise ZohoAPIError(
            status=response.status_code,
            code=code,
            message=message,
            details=details,
            request_id=_response.request_id(response, policy.envelope),
            response=body,
            may_have_acted=True,
        )
    raise BadResponseError(
        f"Zoho answered HTTP {response.status_code} without what the action returns ({missing})",
        status=response.status_code,
        retryable=False,
        may_have_acted=True,
    )


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer, string) for every string under `value` that holds `${`."""
    if isinstance(value, str):
        if "${" in value:
            yield pointer, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{pointer}/{i}")
