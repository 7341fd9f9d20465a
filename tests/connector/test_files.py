"""Files stream: an upload is read from disk as it is sent, a download is written to disk as it arrives."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector import Connector, ZohoAPIError
from connector.files import Upload
from tests.conftest import CRM

ATTACH = {"recordType": "Leads", "recordId": "1"}
CREATED = {"data": [{"code": "SUCCESS", "details": {"id": "9"}, "status": "success"}]}


def test_an_upload_from_a_path_is_sent_and_the_file_closed(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, tmp_path: Path, monkeypatch: Any
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 contents")
    opened: list[io.BufferedReader] = []
    real_open = Upload.open

    def spy(self: Upload) -> Any:
        handle = real_open(self)
        opened.append(handle)  # type: ignore[arg-type]
        return handle

    monkeypatch.setattr(Upload, "open", spy)
    httpx_mock.add_response(url=f"{CRM}/Leads/1/Attachments", json=CREATED)
    connector.run("crmAddAttachment", {**ATTACH, "file": report, "fileName": "report.pdf"}, connection=connection)
    body = httpx_mock.get_requests()[0].read()
    assert b'filename="report.pdf"' in body and b"%PDF-1.7 contents" in body
    assert b"Content-Type: application/pdf" in body
    assert opened and all(handle.closed for handle in opened)


def test_bytes_and_file_objects_are_uploads_too(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(json=CREATED, is_reusable=True)
    connector.run("crmAddAttachment", {**ATTACH, "file": b"raw", "fileName": "a.bin"}, connection=connection)
    stream = io.BytesIO(b"from a stream")
    connector.run("crmAddAttachment", {**ATTACH, "file": stream, "fileName": "s.txt"}, connection=connection)
    assert not stream.closed  # the caller's own file stays the caller's
    first, second = (r.read() for r in httpx_mock.get_requests())
    assert b'filename="a.bin"' in first and b"raw" in first
    assert b"from a stream" in second


def test_a_download_streams_into_a_file(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    content = bytes(range(256)) * 1000
    httpx_mock.add_response(
        url=f"{CRM}/Leads/1/Attachments/2",
        content=content,
        headers={"content-type": "application/pdf", "content-disposition": 'attachment; filename="q3.pdf"'},
    )
    target = tmp_path / "q3.pdf"
    result = connector.download(
        "crmRawRequest", {"url": "/Leads/1/Attachments/2", "responseType": "binary"}, connection=connection, to=target
    )
    assert result == {
        "data": {"fileName": "q3.pdf", "contentType": "application/pdf", "size": len(content), "path": str(target)}
    }
    assert target.read_bytes() == content


def test_a_failed_download_leaves_no_file(
    connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    httpx_mock.add_response(
        status_code=400, json={"code": "INVALID_DATA", "message": "the id given seems to be invalid"}
    )
    target = tmp_path / "missing.pdf"
    with pytest.raises(ZohoAPIError, match="INVALID_DATA"):
        connector.download("crmRawRequest", {"url": "/Leads/1/Attachments/x"}, connection=connection, to=target)
    assert list(tmp_path.iterdir()) == []


def test_a_download_past_the_memory_ceiling_still_streams(
    connection: dict[str, Any], httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    httpx_mock.add_response(content=b"x" * 5000, headers={"content-type": "application/octet-stream"})
    with Connector.load() as connector:
        result = connector.download(
            "crmRawRequest",
            {"url": "/Leads/1/Attachments/2"},
            connection={**connection, "max_response_bytes": 1024},
            to=tmp_path / "big",
        )
    assert result["data"]["size"] == 5000 and (tmp_path / "big").stat().st_size == 5000


def test_a_download_into_an_open_file(connector: Connector, connection: dict[str, Any], httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(content=b"abc", headers={"content-type": "text/plain"})
    sink = io.BytesIO()
    result = connector.download("crmRawRequest", {"url": "/Leads/1/Attachments/2"}, connection=connection, to=sink)
    assert sink.getvalue() == b"abc" and result["data"]["size"] == 3


def test_the_schema_still_checks_an_upload_input(connector: Connector, connection: dict[str, Any]) -> None:
    from connector import InputValidationError

    with pytest.raises(InputValidationError, match="recordId"):  # nothing is sent (pytest-httpx would say)
        connector.run("crmAddAttachment", {"recordType": "Leads", "file": b"x", "fileName": "x"}, connection=connection)


class _Draining(httpx.BaseTransport):
    """Reads an upload chunk by chunk and drops it, as a socket would (httpx.MockTransport would buffer it)."""

    def __init__(self) -> None:
        self.received = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        for chunk in request.stream:
            self.received += len(chunk)
        return httpx.Response(200, json=CREATED, request=request)


def test_an_upload_from_a_path_holds_a_few_chunks_not_the_file(connection: dict[str, Any], tmp_path: Path) -> None:
    """Issue 8.11: a 100 MiB attachment cost +522 MiB RSS (five copies). Streamed from its file, the upload's
    peak Python memory is a few chunks whatever the size (bench.files measures the RSS: 0.5 MiB for 100 MiB)."""
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(32):
            out.write(b"\x5a" * (1024 * 1024))
    transport = _Draining()
    with Connector.load(transport=transport) as connector:
        inputs = {**ATTACH, "file": big, "fileName": "big.bin"}
        connector.run("crmGetRecord", {"recordType": "Leads", "recordId": "1"}, connection=connection)  # warm up
        tracemalloc.start()
        try:
            connector.run("crmAddAttachment", inputs, connection=connection)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert transport.received > 32 * 1024 * 1024
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1024 / 1024:.1f} MiB for a 32 MiB file"
