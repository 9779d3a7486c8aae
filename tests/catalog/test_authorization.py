"""The role x endpoint matrix of the catalog: every endpoint, every role, anonymous included.
The data touched lies in Wangmo; "registrar" is Wangmo's registrar, "registrar_other" Xingyi's,
which must be refused every write (and nothing may be written when it is)."""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from catalog.services import monitoring
from ecovalue.audit.models import AuditEvent
from ecovalue.auth import system_principal
from tests.catalog.conftest import XINGYI, World, make_product, product_body

ROLES = ["anonymous", "admin", "registrar", "registrar_other", "verifier", "trader", "finance",
         "auditor"]
EVERYONE = set(ROLES)
TOKEN_HOLDERS = EVERYONE - {"anonymous"}
WANGMO_WRITERS = {"admin", "registrar"}
_counter = itertools.count(1)


@dataclasses.dataclass
class Ctx:
    world: World
    database: Any
    product: int  # a verified Wangmo product
    record: int  # a monitoring record of it

    def fresh_record(self) -> int:
        with self.database.unit_of_work() as s:
            return monitoring.create_record(s, system_principal("t"), self.product, {
                "period_year": 2000 + next(_counter) % 20, "metric": "area",
                "value": 1.0, "unit": "ha", "method": "remote_sensing",
                "note": str(next(_counter))}).id

    def fresh_party(self) -> int:
        from catalog.services import parties

        with self.database.unit_of_work() as s:
            return parties.create_party(s, system_principal("t"), {
                "kind": "government", "name_zh": f"机关{next(_counter)}",
                "region_code": self.world.village}).id


@dataclasses.dataclass
class Case:
    name: str
    method: str
    path: Callable[[Ctx], str]
    allowed: set[str]
    body: Callable[[Ctx], Any] | None = None
    upload: Callable[[Ctx], bytes] | None = None


def _csv(ctx: Ctx) -> bytes:
    n = next(_counter)
    return (f"name_zh,type,region_code,holder,rights_type\n茶园{n},tea,{ctx.world.village},"
            f"#{ctx.world.collective},ownership\n").encode()


def _party_csv(ctx: Ctx) -> bytes:
    return (f"name_zh,kind,region_code\n合作社{next(_counter)},cooperative,"
            f"{ctx.world.village}\n").encode()


def _monitoring_csv(ctx: Ctx) -> bytes:
    return (f"product_id,year,metric,value,unit,method\n{ctx.product},2019,output,1,t,"
            f"field_survey\n").encode()


CASES = [
    # public reads
    Case("product types", "GET", lambda c: "/catalog/product-types", EVERYONE),
    Case("metrics", "GET", lambda c: "/catalog/metrics", EVERYONE),
    Case("synonyms", "GET", lambda c: "/catalog/synonyms?vocabulary=type", EVERYONE),
    Case("regions", "GET", lambda c: "/catalog/regions", EVERYONE),
    Case("region tree", "GET", lambda c: "/catalog/regions/tree?root=522326", EVERYONE),
    Case("region", "GET", lambda c: f"/catalog/regions/{c.world.village}", EVERYONE),
    Case("public products", "GET", lambda c: "/catalog/public/products", EVERYONE),
    Case("public product", "GET", lambda c: f"/catalog/public/products/{c.product}", EVERYONE),
    Case("public summary", "GET", lambda c: "/catalog/public/summary", EVERYONE),
    Case("template", "GET", lambda c: "/catalog/imports/templates/products", EVERYONE),
    # reads with a token
    Case("products", "GET", lambda c: "/catalog/products", TOKEN_HOLDERS),
    Case("product", "GET", lambda c: f"/catalog/products/{c.product}", TOKEN_HOLDERS),
    Case("export", "GET", lambda c: "/catalog/products/export", TOKEN_HOLDERS),
    Case("summary", "GET", lambda c: "/catalog/products/summary", TOKEN_HOLDERS),
    Case("history", "GET", lambda c: f"/catalog/products/{c.product}/history", TOKEN_HOLDERS),
    Case("product monitoring", "GET", lambda c: f"/catalog/products/{c.product}/monitoring",
         TOKEN_HOLDERS),
    Case("monitoring", "GET", lambda c: "/catalog/monitoring?county=522326", TOKEN_HOLDERS),
    Case("series", "GET", lambda c: "/catalog/monitoring/series?county=522326&metric=visits",
         TOKEN_HOLDERS),
    Case("monitoring record", "GET", lambda c: f"/catalog/monitoring/{c.record}",
         TOKEN_HOLDERS),
    Case("imports", "GET", lambda c: "/catalog/imports", TOKEN_HOLDERS),
    Case("parties", "GET", lambda c: "/catalog/parties", TOKEN_HOLDERS),
    Case("party", "GET", lambda c: f"/catalog/parties/{c.world.collective}",
         TOKEN_HOLDERS - {"trader"}),
    Case("own party", "GET", lambda c: f"/catalog/parties/{c.world.plant}", TOKEN_HOLDERS),
    Case("household lookup", "POST", lambda c: "/catalog/parties/lookup",
         TOKEN_HOLDERS - {"trader"}, body=lambda c: {"id_number": c.world.household_id_number}),
    # writes in Wangmo
    Case("create region", "POST", lambda c: "/catalog/regions", WANGMO_WRITERS,
         body=lambda c: {"code": f"522326{200 + next(_counter) % 700:03d}", "name_zh": "镇"}),
    Case("rename region", "PATCH", lambda c: f"/catalog/regions/{c.world.township}",
         WANGMO_WRITERS, body=lambda c: {"name_zh": f"石屯镇{next(_counter)}"}),
    Case("create party", "POST", lambda c: "/catalog/parties", WANGMO_WRITERS,
         body=lambda c: {"kind": "government", "name_zh": f"局{next(_counter)}",
                         "region_code": c.world.village}),
    Case("update party", "PATCH", lambda c: f"/catalog/parties/{c.world.collective}",
         WANGMO_WRITERS, body=lambda c: {"name_en": f"Dalang {next(_counter)}"}),
    Case("deactivate party", "POST", lambda c: f"/catalog/parties/{c.fresh_party()}/deactivate",
         WANGMO_WRITERS),
    Case("create product", "POST", lambda c: "/catalog/products", WANGMO_WRITERS,
         body=lambda c: product_body(c.world, name_zh=f"茶园{next(_counter)}")),
    Case("update product", "PATCH", lambda c: f"/catalog/products/{c.product}", WANGMO_WRITERS,
         body=lambda c: {"brand": f"品牌{next(_counter)}"}),
    Case("record monitoring", "POST", lambda c: f"/catalog/products/{c.product}/monitoring",
         WANGMO_WRITERS, body=lambda c: {"period_year": 1950 + next(_counter) % 70,
                                         "metric": "output", "value": 1.0, "unit": "t",
                                         "method": "field_survey"}),
    Case("correct monitoring", "PATCH", lambda c: f"/catalog/monitoring/{c.record}",
         WANGMO_WRITERS, body=lambda c: {"value": float(next(_counter))}),
    Case("delete monitoring", "DELETE", lambda c: f"/catalog/monitoring/{c.fresh_record()}",
         WANGMO_WRITERS),
    Case("import products", "POST", lambda c: "/catalog/imports/products", WANGMO_WRITERS,
         upload=_csv),
    Case("import products dry run", "POST", lambda c: "/catalog/imports/products?dry_run=true",
         WANGMO_WRITERS, upload=_csv),
    Case("import monitoring", "POST", lambda c: "/catalog/imports/monitoring", WANGMO_WRITERS,
         upload=_monitoring_csv),
    Case("import parties", "POST", lambda c: "/catalog/imports/parties", WANGMO_WRITERS,
         upload=_party_csv),
    # admins only
    Case("add synonym", "POST", lambda c: "/catalog/synonyms", {"admin"},
         body=lambda c: {"vocabulary": "type", "term": f"茶{next(_counter)}", "code": "tea"}),
]


def _headers(role: str, tokens, world: World) -> dict:
    if role == "anonymous":
        return {}
    if role == "registrar":
        return tokens.registrar()
    if role == "registrar_other":
        return tokens.registrar(XINGYI)
    if role == "trader":
        return tokens.trader(world.plant)
    return tokens.headers(role)


def _audit_count(database) -> int:
    with database.session(write=False) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def test_every_catalog_endpoint_is_in_the_matrix(app):
    documented = set()
    spec = app.test_client().get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        if path.startswith("/catalog"):
            documented |= {(method.upper(), path) for method in operations
                           if method != "parameters"}
    transitions = {("POST", f"/catalog/products/{{product_id}}/{t}")
                   for t in ("submit", "reject", "verify", "suspend", "reinstate", "retire")}
    covered = {
        ("GET", "/catalog/product-types"), ("GET", "/catalog/metrics"),
        ("GET", "/catalog/regions"), ("GET", "/catalog/regions/tree"),
        ("GET", "/catalog/regions/{code}"), ("GET", "/catalog/public/products"),
        ("GET", "/catalog/public/products/{product_id}"), ("GET", "/catalog/public/summary"),
        ("GET", "/catalog/imports/templates/{kind}"), ("GET", "/catalog/products"),
        ("GET", "/catalog/products/{product_id}"), ("GET", "/catalog/products/export"),
        ("GET", "/catalog/products/summary"), ("GET", "/catalog/products/{product_id}/history"),
        ("GET", "/catalog/products/{product_id}/monitoring"), ("GET", "/catalog/monitoring"),
        ("GET", "/catalog/monitoring/series"), ("GET", "/catalog/monitoring/{record_id}"),
        ("GET", "/catalog/imports"), ("GET", "/catalog/parties"),
        ("GET", "/catalog/parties/{party_id}"), ("POST", "/catalog/parties/lookup"),
        ("POST", "/catalog/regions"), ("PATCH", "/catalog/regions/{code}"),
        ("POST", "/catalog/parties"), ("PATCH", "/catalog/parties/{party_id}"),
        ("POST", "/catalog/parties/{party_id}/deactivate"), ("POST", "/catalog/products"),
        ("PATCH", "/catalog/products/{product_id}"),
        ("POST", "/catalog/products/{product_id}/monitoring"),
        ("PATCH", "/catalog/monitoring/{record_id}"),
        ("DELETE", "/catalog/monitoring/{record_id}"), ("POST", "/catalog/imports/products"),
        ("POST", "/catalog/imports/monitoring"), ("POST", "/catalog/imports/parties"),
        ("GET", "/catalog/synonyms"), ("POST", "/catalog/synonyms"),
    } | transitions  # transitions: tests/catalog/test_lifecycle.py, every role and state
    assert documented == covered


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_role_endpoint_matrix(case, client, tokens, world, database):
    ctx = Ctx(world, database, make_product(database, world, "verified"), 0)
    ctx.record = ctx.fresh_record()
    for role in ROLES:
        headers = _headers(role, tokens, world)
        path = case.path(ctx)
        before = _audit_count(database)
        if case.upload is not None:
            response = client.open(path, method=case.method, headers=headers,
                                   data={"file": (io.BytesIO(case.upload(ctx)), "f.csv")},
                                   content_type="multipart/form-data")
        else:
            response = client.open(path, method=case.method, headers=headers,
                                   json=case.body(ctx) if case.body else None)
        where = f"{case.name} as {role}: {response.status_code} {response.get_data()[:300]!r}"
        if role in case.allowed:
            assert 200 <= response.status_code < 300, where
        elif role == "anonymous":
            assert response.status_code == 401, where
        else:
            assert response.status_code == 403, where
        if response.status_code >= 400:
            assert _audit_count(database) == before, where  # nothing written
