"""CRM record semantics: field validation, mandatory and unique checks, writes and per-row results.

Errors are worded as Zoho words them (zoho-api.md §3) so connectors can be tested against real-looking rows.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from connector.sandbox import changes as notify
from connector.sandbox.clock import crm_time
from connector.sandbox.state import JSON, FieldDef, ModuleDef, SandboxState

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_TEXTUAL = {"text", "textarea", "email", "phone", "picklist", "website"}


class RecordError(Exception):
    """One row's failure, answered as {"code", "details", "message", "status": "error"}."""

    def __init__(self, code: str, message: str, details: JSON) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def row(self) -> JSON:
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


def invalid(f: FieldDef, path: str, **extra: Any) -> RecordError:
    return RecordError(
        "INVALID_DATA",
        "invalid data",
        {"expected_data_type": f.data_type, "api_name": f.api_name, "json_path": path, **extra},
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _normalize(state: SandboxState, f: FieldDef, value: Any, path: str) -> Any:
    """Check `value` against the field's type and return what is stored."""
    kind = f.data_type
    if value is None:
        return None
    if kind in _TEXTUAL:
        if not isinstance(value, str):
            raise invalid(f, path)
        if f.length is not None and len(value) > f.length:
            raise invalid(f, path, maximum_length=f.length)
        if kind == "email" and value and not _EMAIL.match(value):
            raise invalid(f, path)
        if kind == "picklist" and f.pick_list and value and value not in f.pick_list:
            raise invalid(f, path, supported_values=list(f.pick_list))
        return value
    if kind in {"integer", "bigint"}:
        limit = _INT32 if kind == "integer" else _INT64
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) > limit:
            raise invalid(f, path)
        return value
    if kind in {"double", "currency", "percent"}:
        if not _is_number(value):
            raise invalid(f, path)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise invalid(f, path)
        return value
    if kind == "date":
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            raise invalid(f, path) from None
        if len(value) != 10:
            raise invalid(f, path)
        return value
    if kind == "datetime":
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise invalid(f, path) from None
        if parsed.tzinfo is None:
            raise invalid(f, path)
        return value
    if kind == "multiselectpicklist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(f, path)
        return value
    if kind in {"lookup", "ownerlookup"}:
        ref = value.get("id") if isinstance(value, dict) else value
        if not isinstance(ref, str):
            raise invalid(f, path)
        if kind == "ownerlookup":
            if ref not in state.users:
                raise invalid(f, path)
            return state.user_ref(ref)
        target_module = state.module(f.lookup or "")
        target = state.records.get(target_module.api_name, {}).get(ref) if target_module else None
        if target is None or target_module is None:
            raise invalid(f, path)
        return {"name": target.get(target_module.display_field), "id": ref}
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _key(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id"))
    return str(value).strip().lower()


class Batch:
    """One request's writes to one module. Unique-value indexes are built once and kept on the state between
    requests (as long as no other write touched the module), so a run of bulk writes stays linear.

    Every write to a CRM record goes through a Batch, which tells `changes` about it: that is what notification
    channels (/actions/watch) are fed from."""

    def __init__(self, state: SandboxState, module: ModuleDef, now: float, user_id: str) -> None:
        self.state, self.module, self.now, self.user_id = state, module, now, user_id
        self.store = state.records[module.api_name]
        self._indexes: dict[str, dict[str, str]] = {}
        # A batch serves one request, during which the module's fields cannot change: looked up once, not per row
        # (a bulk write of 100 rows would otherwise scan the field list several times per row).
        self._fields = {f.api_name: f for f in module.fields}
        self._mandatory = [f for f in module.fields if f.mandatory]
        self._unique = [f for f in module.fields if f.unique]
        self._empty_row: JSON = dict.fromkeys(self._fields)
        self._stamp = crm_time(now)

    def index(self, field_name: str) -> dict[str, str]:
        """Value (case-folded) -> id of the first record holding it."""
        idx = self._indexes.get(field_name)
        if idx is None:
            key = (self.module.api_name, field_name)
            cached = self.state.value_indexes.get(key)
            if cached is not None and cached[0] == self.state.version(self.module.api_name):
                idx = cached[1]
            else:
                idx = {}
                for rid, row in self.store.items():
                    value = row.get(field_name)
                    if not _blank(value):
                        idx.setdefault(_key(value), rid)
                self.state.value_indexes[key] = (self.state.version(self.module.api_name), idx)
            self._indexes[field_name] = idx
        return idx

    def _touch(self) -> None:
        """After one of this batch's writes: the indexes it kept in step stay valid for the next request."""
        self.state.touch(self.module.api_name)
        version = self.state.version(self.module.api_name)
        for name, idx in self._indexes.items():
            self.state.value_indexes[(self.module.api_name, name)] = (version, idx)

    def _reindex(self, rid: str, before: JSON | None, after: JSON | None) -> None:
        for name, idx in self._indexes.items():
            if before is not None and not _blank(before.get(name)) and idx.get(_key(before[name])) == rid:
                del idx[_key(before[name])]
            if after is not None and not _blank(after.get(name)):
                idx.setdefault(_key(after[name]), rid)

    def prepare(self, data: Any, path: str, existing: JSON | None) -> JSON:
        """Validated changes for one input row; raises RecordError for the first problem, as Zoho reports one."""
        if not isinstance(data, dict):
            raise RecordError("INVALID_DATA", "invalid data", {"expected_data_type": "jsonobject", "json_path": path})
        for f in self._mandatory:
            if (existing is None and _blank(data.get(f.api_name))) or (f.api_name in data and _blank(data[f.api_name])):
                raise RecordError(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    {"api_name": f.api_name, "json_path": f"{path}.{f.api_name}"},
                )
        changes: JSON = {}
        for name, value in data.items():
            given = self._fields.get(name)
            if given is None or given.read_only or name in {"Created_By", "Modified_By"}:
                continue  # Zoho ignores unknown and system fields in input
            changes[name] = _normalize(self.state, given, value, f"{path}.{name}")
        for f in self._unique:
            value = changes.get(f.api_name)
            if _blank(value):
                continue
            holder = self.index(f.api_name).get(_key(value))
            if holder is not None and (existing is None or holder != existing["id"]):
                dup = self.store[holder]
                raise RecordError(
                    "DUPLICATE_DATA",
                    "duplicate data",
                    {
                        "api_name": f.api_name,
                        "json_path": f"{path}.{f.api_name}",
                        "duplicate_record": {
                            "id": holder,
                            "Owner": dup.get("Owner") or self.state.user_ref(self.user_id),
                            "module": {"api_name": self.module.api_name, "id": self.module.id},
                        },
                    },
                )
        return changes

    def _success(self, row: JSON, message: str, **extra: Any) -> JSON:
        details = {
            "Modified_Time": row["Modified_Time"],
            "Modified_By": _minified(row["Modified_By"]),
            "Created_Time": row["Created_Time"],
            "id": row["id"],
            "Created_By": _minified(row["Created_By"]),
            "$approval_state": "approved",
        }
        return {"code": "SUCCESS", "details": details, "message": message, "status": "success", **extra}

    def insert(self, data: Any, path: str, **extra: Any) -> JSON:
        try:
            changes = self.prepare(data, path, None)
        except RecordError as exc:
            return exc.row()
        rid = self.state.new_crm_id()
        me = self.state.user_ref(self.user_id)
        stamp = self._stamp
        row: JSON = dict(self._empty_row)
        row.update(changes)
        row.update(id=rid, Created_By=me, Modified_By=me, Created_Time=stamp, Modified_Time=stamp)
        if row.get("Owner") is None:
            row["Owner"] = me
        _derive(row)
        self.store[rid] = row
        self._reindex(rid, None, row)
        self._touch()
        notify.record(self.module.api_name, "insert", rid)
        return self._success(row, "record added", **extra)

    def update(self, rid: Any, data: Any, path: str, **extra: Any) -> JSON:
        existing = self.store.get(rid) if isinstance(rid, str) else None
        if existing is None:
            return invalid_id(f"{path}.id")
        try:
            changes = self.prepare(data, path, existing)
        except RecordError as exc:
            return exc.row()
        self.set_fields(rid, changes)
        return self._success(existing, "record updated", **extra)

    def set_fields(self, rid: str, changes: JSON) -> None:
        """Write checked values to an existing record, stamp it as modified and report the fields that changed."""
        existing = self.store[rid]
        before = dict(existing)
        existing.update(changes)
        existing.update(Modified_By=self.state.user_ref(self.user_id), Modified_Time=self._stamp)
        _derive(existing)
        self._reindex(rid, before, existing)
        self._touch()
        changed = {k: existing[k] for k in changes if before.get(k) != existing[k]}
        notify.record(self.module.api_name, "update", rid, changed)

    def delete(self, rid: str) -> JSON:
        row = self.store.pop(rid, None)
        if row is None:
            return RecordError("INVALID_DATA", "the id given seems to be invalid", {"id": rid}).row()
        self._reindex(rid, row, None)
        self._touch()
        notify.record(self.module.api_name, "delete", rid)
        who = _minified(self.state.user_ref(self.user_id))
        self.state.deleted.setdefault(self.module.api_name, []).append(
            {
                "deleted_by": who,
                "id": rid,
                "display_name": str(row.get(self.module.display_field) or ""),
                "type": "recycle",
                "created_by": row.get("Created_By") or who,
                "deleted_time": crm_time(self.now),
            }
        )
        for aid in [a.id for a in self.state.attachments.values() if a.record_id == rid]:
            del self.state.attachments[aid]
        for nid in [n for n, note in self.state.notes.items() if note["Parent_Id"]["id"] == rid]:
            del self.state.notes[nid]
        return {"code": "SUCCESS", "details": {"id": rid}, "message": "record deleted", "status": "success"}


def invalid_id(path: str) -> JSON:
    return RecordError("INVALID_DATA", "the id given seems to be invalid", {"api_name": "id", "json_path": path}).row()


def _minified(user: JSON) -> JSON:
    return {"name": user["name"], "id": user["id"]}


def _derive(row: JSON) -> None:
    """Formula fields Zoho computes itself."""
    if "Full_Name" in row:
        row["Full_Name"] = " ".join(p for p in (row.get("First_Name"), row.get("Last_Name")) if p) or None


def batch_status(rows: list[JSON], ok: int) -> int:
    """`ok` when every row succeeded, 400 when none did, 207 when mixed."""
    good = sum(1 for r in rows if r.get("status") == "success")
    if good == len(rows):
        return ok
    return 400 if good == 0 else 207


def project(row: JSON, wanted: list[str] | None) -> JSON:
    """The record as returned: every field, or `id` plus the requested ones."""
    if wanted is None:
        return dict(row)
    out = {"id": row["id"]}
    for name in wanted:
        if name in row:
            out[name] = row[name]
    return out
