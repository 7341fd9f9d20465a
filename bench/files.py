"""Memory per MB uploaded: an attachment streamed from its file vs the same file given as base64 in JSON.

    python -m bench.files

Each upload runs in a fresh child process against the sandbox (in its own process); the figure is the child's
peak RSS growth during the upload, divided by the file's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._sandbox import access_connection, sandbox_process

_CHILD = """
import base64, json, resource, sys
from pathlib import Path
from connector import Connector
connection, path, how = json.loads(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with Connector.load() as connector:
    lead = connector.run("crmCreateRecord", {"recordType": "Leads", "fieldValues": {"Last_Name": "Big"}},
                         connection=connection)["data"]["data"][0]["details"]["id"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    file = path if how == "path" else {"base64": base64.b64encode(path.read_bytes()).decode()}
    connector.run("crmAddAttachment", {"recordType": "Leads", "recordId": lead, "file": file, "fileName": path.name},
                  connection=connection)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def upload_memory(size_mib: int = 100) -> dict[str, float]:
    result = {}
    with sandbox_process() as base, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        with path.open("wb") as out:
            for _ in range(size_mib):
                out.write(b"\x5a" * (1024 * 1024))
        connection = json.dumps(access_connection(base))
        for how in ("path", "base64"):
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, connection, str(path), how], capture_output=True, text=True, check=True
            )
            grown = float(done.stdout.strip().splitlines()[-1])
            result[f"{how}_mib_per_mib"] = round(grown / size_mib, 3)
            result[f"{how}_peak_growth_mib"] = round(grown, 1)
    return result


def main() -> None:
    figures = upload_memory()
    print(
        f"100 MiB attachment, peak RSS growth: streamed from the file {figures['path_peak_growth_mib']} MiB "
        f"({figures['path_mib_per_mib']} MiB per MiB); as base64 JSON {figures['base64_peak_growth_mib']} MiB "
        f"({figures['base64_mib_per_mib']} MiB per MiB)"
    )


if __name__ == "__main__":
    main()
