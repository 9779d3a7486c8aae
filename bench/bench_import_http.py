"""Measurement: the largest documented product import (200,000 rows, about 18 MB of CSV) sent
over HTTP to gunicorn under `make run`'s configuration (ecovalue/gunicorn_config.py), timed from
the first byte sent to the last byte received, with the answer checked (201, every row created,
or 503 problem+json if the request budget ran out). Not a test: it prints what it measured.

    scripts/with-postgres.sh sh -c '.venv/bin/python bench/bench_import_http.py \
        --database-url "$ECOVALUE_TEST_DATABASE_URL"'
    .venv/bin/python bench/bench_import_http.py --rows 50000      # SQLite in a temp dir
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_import import TYPES, VILLAGES, Server, prepare  # noqa: E402

from ecovalue import protect  # noqa: E402
from ecovalue.auth import services as auth_services  # noqa: E402
from ecovalue.auth import system_principal  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_csv(rows: int, holder_ids: list[int]) -> bytes:
    """bench_import's rows without its optional last columns: about 92 bytes a row, so that
    200,000 rows are about 18 MB, like the file of issue 8."""
    lines = [("external_code,name_zh,type,region_code,holder,rights_type,area_ha,latitude,"
             "longitude,quantity,quantity_unit")]
    for i in range(rows):
        type_code, unit = TYPES[i % len(TYPES)]
        lines.append(
            f"B-{i:07d},产品{i:07d},{type_code},522326101{201 + i % VILLAGES:03d},"
            f"#{holder_ids[i % len(holder_ids)]},{'ownership' if i % 3 else 'contract_management'},"
            f"{1 + (i % 997) / 10:.1f},{25.0 + (i % 100) / 100:.4f},"
            f"{106.0 + (i % 50) / 100:.4f},{(i % 431) + 0.5},{unit}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    key = protect.new_key()
    protect.configure(key)
    server = Server(args.database_url)
    instance = tempfile.mkdtemp(prefix="bench-http-")
    try:
        url = server.fresh("http")
        database, holders = prepare(url)
        with database.unit_of_work() as session:
            token = auth_services.create_token(session, system_principal("bench"),
                                               name="bench", role="admin").secret
        database.dispose()
        data = make_csv(args.rows, holders)
        body, content_type = _multipart(data, "big.csv")
        port = _free_port()
        env = {**os.environ, "ECOVALUE_DATABASE_URL": url, "ECOVALUE_INSTANCE_DIR": instance,
               "ECOVALUE_LOG_LEVEL": "WARNING", "ECOVALUE_DATA_KEY": key}
        gunicorn = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "ecovalue/gunicorn_config.py",
             "--bind", f"127.0.0.1:{port}", "--workers", "1", "ecovalue.app:create_app()"],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(200):
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    probe.request("GET", "/health")
                    probe.getresponse().read()
                    break
                except OSError:
                    time.sleep(0.1)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
            started = time.perf_counter()
            connection.request("POST", f"/catalog/imports/products?dry_run="
                               f"{'true' if args.dry_run else 'false'}", body=body,
                               headers={"Authorization": f"Bearer {token}",
                                        "Content-Type": content_type})
            response = connection.getresponse()
            answer = response.read()
            seconds = time.perf_counter() - started
        finally:
            gunicorn.terminate()
            gunicorn.wait(30)
        kind = response.getheader("Content-Type")
        summary = json.loads(answer) if kind and "json" in kind else answer[:200]
        created = summary.get("created") if isinstance(summary, dict) else None
        print(f"bench_import_http: {args.rows:,} rows ({len(data) / 1e6:.1f} MB) on "
              f"{url.split(':')[0]} through gunicorn (ecovalue/gunicorn_config.py): HTTP "
              f"{response.status} {kind} in {seconds:.1f} s; created={created}")
        if response.status >= 400:
            print(json.dumps(summary, ensure_ascii=False)[:500] if isinstance(summary, dict)
                  else summary)
    finally:
        server.close()


if __name__ == "__main__":
    main()
