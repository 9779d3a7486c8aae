"""Exports of the catalog as CSV or XLSX, in the import template's columns, so that an exported
file can be edited and imported again (the natural key matches the rows back)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import imports
from catalog.identifiers import mask_name
from catalog.models import Party, Product
from catalog.services.products import filter_products, order_by
from ecovalue.auth import Principal, authorize
from ecovalue.spreadsheet import write_csv, write_xlsx

#: informative columns after the template's (ignored when the file is imported again)
_EXTRA = ["id", "status", "holder_name", "version"]


def to_bytes(columns: Sequence[str], records: Sequence[Mapping[str, Any]], fmt: str,
             sheet: str) -> bytes:
    """CSV (UTF-8 with BOM, which Excel needs to show Chinese) or XLSX, through the shell's
    export writer (text that would start a formula is written as text)."""
    rows: list[list[Any]] = [list(columns)]
    rows += ([record.get(c) for c in columns] for record in records)
    return write_csv(rows) if fmt == "csv" else write_xlsx({sheet: rows})


def export_products(session: Session, actor: Principal, fmt: str, *, sort: str | None = None,
                    **filters: Any) -> bytes:
    """Every product matching the filters (no pagination). Holders are written as their credit
    code or `#id` (an ID-card number never leaves the service); a household's name is masked."""
    authorize(actor, "catalog.product.read")
    stmt = filter_products(
        sa.select(Product, Party.kind, Party.name_zh.label("holder_name"), Party.credit_code)
        .join(Party, Party.id == Product.holder_party_id), **filters).order_by(*order_by(sort))
    records = []
    for product, kind, holder_name, credit_code in session.execute(stmt):
        records.append({
            "external_code": product.external_code, "name_zh": product.name_zh,
            "name_en": product.name_en, "category": product.category,
            "type": product.type_code, "region_code": product.region_code,
            "holder": credit_code or f"#{product.holder_party_id}",
            "rights_type": product.rights_type, "area_ha": product.area_ha,
            "latitude": product.latitude, "longitude": product.longitude,
            "grid_cell_id": product.grid_cell_id, "quantity": product.quantity,
            "quantity_unit": product.quantity_unit, "quality_grade": product.quality_grade,
            "development_status": product.development_status, "brand": product.brand,
            "certifications": ";".join(product.certifications or []),
            "note": (product.attributes or {}).get("note"),
            "id": product.id, "status": product.status,
            "holder_name": mask_name(holder_name) if kind == "household" else holder_name,
            "version": product.version,
        })
    columns = imports.template(imports.PRODUCT_COLUMNS) + _EXTRA
    return to_bytes(columns, records, fmt, "products")


_EXAMPLES: dict[str, dict[str, Any]] = {
    "products": {
        "external_code": "DEMO-0001", "name_zh": "示例茶园 (DEMO)", "name_en": "Example tea "
        "garden (DEMO)", "category": "provisioning", "type": "茶叶",
        "region_code": "522326", "county_name": "望谟县", "holder": "#1",
        "rights_type": "承包经营权", "area_ha": 12.5,
        "latitude": 25.17, "longitude": 106.09, "grid_cell_id": "", "quantity": 3.2,
        "quantity_unit": "t", "quality_grade": "一级", "development_status": "已开发",
        "brand": "", "certifications": "绿色食品;地理标志", "note": "DEMO example row",
    },
    "parties": {
        "name_zh": "韦某 (DEMO)", "kind": "农户", "region_code": "", "county_name": "望谟县",
        "township_name": "石屯镇", "village_name": "打狼村", "location": "", "credit_code": "",
        "id_number": "11010519491231002X", "bank_account": "6217995230000000017",
        "bank_name": "贵州农信 (DEMO)", "name_en": "",
    },
    "monitoring": {
        "product_id": 1, "external_code": "", "region_code": "", "type": "", "name_zh": "",
        "year": 2024, "month": "", "metric": "产量", "value": 3.2, "unit": "t",
        "method": "实地调查", "source": "DEMO example row", "note": "",
    },
}


def template(kind: str, fmt: str) -> bytes:
    columns = {"products": imports.PRODUCT_COLUMNS, "monitoring": imports.MONITORING_COLUMNS,
               "parties": imports.PARTY_COLUMNS}[kind]
    names = imports.template(columns)
    return to_bytes(names, [_EXAMPLES[kind]], fmt, kind)
