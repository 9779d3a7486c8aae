"""A request that runs out of time is answered as problem+json (issue 8, hole 4): the app's
request budget rolls it back with a 503 before gunicorn's worker timeout would kill the worker
(which answers an HTML 500 or nothing), under the configuration `make run` uses."""

from __future__ import annotations

import http.client
import json
import os
import runpy
import socket
import subprocess
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from ecovalue import migrate, protect
from ecovalue.app import create_app
from ecovalue.auth import services as auth_services
from ecovalue.auth import system_principal
from ecovalue.db import Database
from tests.conftest import TEST_DATA_KEY

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "ecovalue" / "gunicorn_config.py"


def test_a_request_over_budget_is_a_503_problem_and_is_rolled_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'budget.sqlite3'}"
    migrate.upgrade(url)
    app = create_app({"DATABASE_URL": url, "DATA_KEY": TEST_DATA_KEY, "LOG_LEVEL": "WARNING",
                      "INSTANCE_DIR": str(tmp_path), "REQUEST_BUDGET_SECONDS": 0.2})
    from ecovalue.db import current_session

    def slow() -> str:
        current_session().execute(sa.text("CREATE TABLE budget_probe (x INTEGER)"))
        time.sleep(3)
        return "finished"

    app.add_url_rule("/slow", view_func=slow)
    started = time.monotonic()
    response = app.test_client().get("/slow")
    assert time.monotonic() - started < 2
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "request-timeout" and body["limit_seconds"] == 0.2
    with app.extensions["ecovalue.db"].session(write=False) as session:
        assert "budget_probe" not in sa.inspect(session.connection()).get_table_names()
    # the budget stops with the request: the next one is not interrupted
    assert app.test_client().get("/health").status_code == 200
    time.sleep(0.3)
    app.extensions["ecovalue.db"].dispose()


def test_the_gunicorn_configuration_keeps_the_budget_below_the_worker_timeout(monkeypatch):
    for env in ({}, {"ECOVALUE_WORKER_TIMEOUT": "60"},
                {"ECOVALUE_WORKER_TIMEOUT": "60", "ECOVALUE_REQUEST_BUDGET_SECONDS": "500"}):
        monkeypatch.delenv("ECOVALUE_WORKER_TIMEOUT", raising=False)
        monkeypatch.delenv("ECOVALUE_REQUEST_BUDGET_SECONDS", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        config = runpy.run_path(str(CONFIG))
        budget = float(os.environ["ECOVALUE_REQUEST_BUDGET_SECONDS"])
        assert config["worker_class"] == "sync" and 0 < budget <= config["timeout"] - 30
    assert "gunicorn_config.py" in (ROOT / "Makefile").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_under_make_runs_configuration_answers_a_long_import_as_problem_json(tmp_path):
    url = f"sqlite:///{tmp_path / 'gunicorn.sqlite3'}"
    migrate.upgrade(url)
    protect.configure(TEST_DATA_KEY)
    database = Database(url)
    with database.unit_of_work() as session:
        token = auth_services.create_token(session, system_principal("test"), name="budget",
                                           role="admin").secret
    database.dispose()
    rows = "\n".join(f"B-{i:07d},产品{i:07d},tea,522326101201,#1,ownership,1.5,3.5,t"
                     for i in range(200_000))
    data = ("external_code,name_zh,type,region_code,holder,rights_type,area_ha,quantity,"
            "quantity_unit\n" + rows + "\n").encode()
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.csv\""
            f"\r\nContent-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n" \
        .encode()
    port = _free_port()
    env = {**os.environ, "ECOVALUE_DATABASE_URL": url, "ECOVALUE_INSTANCE_DIR": str(tmp_path),
           "ECOVALUE_DATA_KEY": TEST_DATA_KEY, "ECOVALUE_LOG_LEVEL": "WARNING",
           # a budget the upload itself never exhausts (20 MB on loopback), the import does
           "ECOVALUE_WORKER_TIMEOUT": "33", "ECOVALUE_REQUEST_BUDGET_SECONDS": "3"}
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(CONFIG), "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "ecovalue.app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/health")
                probe.getresponse().read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", "/catalog/imports/products?dry_run=true",
                           body=body, headers={"Authorization": f"Bearer {token}",
                                               "Content-Type": f"multipart/form-data; "
                                                               f"boundary={boundary}"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 503, answer
        assert response.getheader("Content-Type") == "application/problem+json"
        assert answer["code"] == "request-timeout"
    finally:
        server.terminate()
        server.wait(30)
