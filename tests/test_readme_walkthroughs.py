"""Every "Try it" block of the READMEs runs, as written, on a fresh demo database.

What `make run` does, in a temporary folder: `ecovalue db upgrade`, `ecovalue demo load`,
`ecovalue demo tokens`, then gunicorn serving the app. Each README's ```sh blocks under a
heading that starts with "Try it" then run in order in one bash (so a variable set in one block
is there in the next, as in a terminal), with `set -euo pipefail`, from a folder laid out like
the repository's top (`.venv/bin/ecovalue` works; `ecovalue` is on the PATH), and with one
change to the text: the server listens on a free port, and `127.0.0.1:5000` / `localhost:5000`
are rewritten to it. curl runs with `--fail-with-body` (from a `.curlrc`), so an HTTP error
fails the block as a failing command does: a command meant to fail has no place in a Try-it
block.

The walkthroughs use their own SQLite database whatever the suite runs on, so they run once:
in the SQLite pass of `make test`, not in the PostgreSQL one.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: in this order: ids the READMEs mention (token 7, run 3 ...) are those of a fresh demo
READMES = ["README.md", "catalog/README.md", "valuation/README.md", "ledger/README.md",
           "ledger/pilot/README.md", "ledger/compensation/README.md",
           "ledger/reconcile/README.md", "ledger/sharing/README.md",
           "ledger/market/README.md"]
DOCUMENTED_ADDRESS = re.compile(r"\b(?:127\.0\.0\.1|localhost):5000\b")

sqlite_pass_only = pytest.mark.skipif(
    bool(os.environ.get("ECOVALUE_TEST_DATABASE_URL")),
    reason="the walkthroughs use their own SQLite demo database: they run in the SQLite pass")


def try_it_blocks(markdown: str) -> list[str]:
    """The ```sh blocks of the sections whose heading starts with "Try it" (and of their
    subsections)."""
    blocks: list[str] = []
    try_level: int | None = None  # heading level of the Try-it section we are in
    fence: list[str] | None = None  # lines of the fenced block we are in
    shell = False
    for line in markdown.splitlines():
        if fence is not None:
            if line.startswith("```"):
                if shell and try_level is not None:
                    blocks.append("\n".join(fence))
                fence = None
            else:
                fence.append(line)
        elif line.startswith("```"):
            fence, shell = [], line.strip() == "```sh"
        elif heading := re.match(r"^(#+)\s+(.*)", line):
            level = len(heading[1])
            if try_level is not None and level <= try_level:
                try_level = None
            if heading[2].lower().startswith("try it"):
                try_level = level
    return blocks


def test_the_block_finder_reads_only_try_it_sections():
    text = ("# T\n```sh\nmake run\n```\n## Try it\ntext\n```sh\necho a\n```\n### Sub\n"
            "```sh\necho b\n```\n```json\n{}\n```\n```\n# not a heading\n```\n"
            "## Other\n```sh\necho c\n```\n## Try it: more\n```sh\necho d\necho e\n```\n")
    assert try_it_blocks(text) == ["echo a", "echo b", "echo d\necho e"]


def test_every_readme_has_a_walkthrough():
    for name in READMES:
        assert try_it_blocks((ROOT / name).read_text(encoding="utf-8")), name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Demo:
    """The folder, environment and port of a running demo server."""

    def __init__(self, folder: Path, env: dict[str, str], port: int) -> None:
        self.folder, self.env, self.port = folder, env, port

    def run(self, script: str, timeout: float = 900) -> subprocess.CompletedProcess:
        # a ceiling, not a benchmark: each `ecovalue` command starts the app (~10 s on the
        # shared 2-core machine under load) and valuation's README runs some forty of them
        return subprocess.run(["bash", "-c", script], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("walkthrough")
    instance = folder / "instance"
    bin_dir = Path(sys.executable).parent
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "ecovalue").symlink_to(bin_dir / "ecovalue")
    (folder / ".curlrc").write_text("fail-with-body\nshow-error\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ECOVALUE_")}
    env.update({
        "ECOVALUE_INSTANCE_DIR": str(instance),
        "ECOVALUE_DATABASE_URL": f"sqlite:///{instance / 'ecovalue.sqlite3'}",
        "ECOVALUE_LOG_LEVEL": "WARNING",
        "PATH": f"{folder / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "CURL_HOME": str(folder),
    })
    port = free_port()
    setup = Demo(folder, env, port).run(
        "set -e; ecovalue db upgrade; ecovalue demo load --if-empty; ecovalue demo tokens")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    server = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "-c", "ecovalue/gunicorn_config.py", "--bind",
         f"127.0.0.1:{port}", "--workers", "1",
         "--log-level", "warning", "ecovalue.app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server did not start: {server.stderr.read()}") from None
                time.sleep(0.2)
        yield Demo(folder, env, port)
    finally:
        server.terminate()
        server.wait(timeout=30)


def walkthrough(name: str, blocks: list[str], port: int) -> str:
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks, start=1):
        script.append(f"echo '### {name}, block {number}' >&2")
        script.append(DOCUMENTED_ADDRESS.sub(f"127.0.0.1:{port}", block))
    return "\n".join(script)


@sqlite_pass_only
def test_a_refused_request_or_a_failing_command_fails_the_walkthrough(demo: Demo):
    assert demo.run(walkthrough("t", ["curl -s http://127.0.0.1:5000/health"], demo.port)
                    ).returncode == 0
    refused = demo.run(walkthrough("t", ["curl -s http://localhost:5000/auth/whoami"],
                                         demo.port))
    assert refused.returncode == 22 and "unauthorized" in refused.stdout  # 401, body shown
    failing = demo.run(walkthrough("t", ["ecovalue ledger balance NO-SUCH-ACCOUNT | cat",
                                         "echo never"], demo.port))
    assert failing.returncode == 1 and "never" not in failing.stdout


@sqlite_pass_only
@pytest.mark.parametrize("readme", READMES)
def test_try_it_runs_as_written(demo: Demo, readme: str):
    blocks = try_it_blocks((ROOT / readme).read_text(encoding="utf-8"))
    done = demo.run(walkthrough(readme, blocks, demo.port))
    assert done.returncode == 0, (
        f"a Try-it block of {readme} failed (exit {done.returncode}):\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
