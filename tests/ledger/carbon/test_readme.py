"""The "Try it" walkthrough of ledger/carbon/README.md runs as written, through the HTTP API,
on a fresh database with the demo data: register a project on demo parcels, file and verify a
report, issue, transfer to a buyer, retire, open and verify the public certificate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from catalog.models import Product
from ledger.carbon.services import registry
from tests.conftest import load_demo

README = Path(__file__).parents[3] / "ledger" / "carbon" / "README.md"
_HEAD = re.compile(r"^(public|registrar|verifier|admin|trader \d+) (GET|POST|PUT|PATCH) (\S+)$")


def steps() -> list[tuple[str, str, str, str | None, list[tuple[str, str]]]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Try it"):text.index("## Decisions")]
    out = []
    for block in re.findall(r"```http\n(.*?)```", section, flags=re.DOTALL):
        lines = block.strip().splitlines()
        match = _HEAD.match(lines[0])
        assert match, lines[0]
        keeps = [tuple(part.strip() for part in line[3:].split("=", 1))
                 for line in lines[1:] if line.startswith("=> ")]
        body = "\n".join(line for line in lines[1:] if not line.startswith("=> ")).strip()
        out.append((*match.groups(), body or None, keeps))
    return out


def _field(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if part.isdigit() else data[part]
    return data


def _fill(text: str, kept: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(kept[m.group(1)]) if m.group(1) in kept
                  else m.group(0), text)


def test_readme_walkthrough_runs_through_the_api(app, client, tokens, database):
    load_demo(app)
    with database.session(write=False) as s:  # the README names the demo parcels by id
        assert s.scalar(sa.select(Product.name_zh).where(Product.id == 1)) == "打狼村单株碳汇林"
        assert s.scalar(sa.select(Product.name_zh).where(Product.id == 2)) == "新合村单株碳汇林"
    walkthrough = steps()
    assert len(walkthrough) >= 15
    kept: dict = {}
    answers = []
    for role, method, path, body, keeps in walkthrough:
        if role == "public":
            headers = {}
        elif role.startswith("trader"):
            headers = tokens.trader(int(role.split()[1]))
        elif role == "registrar":
            headers = tokens.registrar()
        else:
            headers = tokens.headers(role)
        url = _fill(path, kept)
        url = url.split("?")[0] + ("?" + quote(url.split("?", 1)[1], safe="=&")
                                   if "?" in url else "")
        response = client.open(url, method=method, headers=headers,
                               json=json.loads(_fill(body, kept)) if body else None)
        assert response.status_code < 300, (role, method, url, response.get_data(as_text=True))
        answers.append(response)
        for name, field in keeps:
            kept[name] = _field(response.get_json(), field)
    by_path = {_fill(p, kept).split("?")[0]: r for (_, _, p, _, _), r in
               zip(walkthrough, answers, strict=True)}
    certificate = kept["certificate"]
    page = by_path[f"/carbon/public/certificates/{certificate}"].get_data(as_text=True)
    assert "兴义火电厂" in page and "300 tCO2e" in page and kept["audit_hash"] in page
    assert by_path[f"/carbon/public/certificates/{certificate}/verify"].get_json()["valid"]
    assert by_path[f"/carbon/public/certificates/{certificate}.pdf"].data[:5] == b"%PDF-"
    trace = by_path[f"/carbon/public/issuances/{kept['batch']}/trace"].get_json()
    assert [p["product_id"] for p in trace["parcels"]] == [1, 2]
    assert all(p["monitoring_records"] for p in trace["parcels"])
    holdings = by_path[f"/carbon/public/issuances/{kept['batch']}/holdings"].get_json()
    retired = [h for h in holdings if h["role"] == "retired"]
    assert retired[0]["quantity_t"] == 300
    # an altered certificate does not verify
    response = client.get(f"/carbon/public/certificates/{certificate}/verify",
                          query_string={"quantity_t": 3000, "audit_hash": kept["audit_hash"]})
    assert response.status_code == 422
    assert response.get_json()["code"] == "certificate-mismatch"
    with database.session(write=False) as s:
        from ecovalue.auth import system_principal
        from ledger import core as ledger

        assert registry.verify(s, system_principal("test")) == []
        assert ledger.verify(s, system_principal("test")) == []
