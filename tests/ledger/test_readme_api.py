"""The Python example of ledger/README.md runs as written on the demo data."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from catalog.demo import PARTIES
from catalog.models import Party
from ledger import core
from tests.conftest import load_demo

README = Path(__file__).parents[2] / "ledger" / "README.md"


def test_public_api_example_runs(app, session, system, capsys):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The public API"):text.index("## Try it")]
    [example] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    load_demo(app)
    bureau_id = session.scalar(sa.select(Party.id).where(
        Party.name_zh == PARTIES["wangmo_bureau"]["name_zh"]))
    exec(compile(example, str(README), "exec"),  # our own documentation
         {"session": session, "actor": system, "bureau_id": bureau_id})
    assert "short by" in capsys.readouterr().out
    assert core.verify(session, system) == []
