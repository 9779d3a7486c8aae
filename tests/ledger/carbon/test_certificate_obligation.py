"""A retirement that settles a pilot obligation names it on its certificate (HTML and PDF);
any retirement shows its reason."""

from __future__ import annotations

from ledger.carbon import certificate

VIEW = {"certificate_number": "QXN-RET-2026-000042", "quantity_t": 400,
        "beneficiary_name": "黔西南某电厂", "purpose": "thermal_power_pilot",
        "compliance_year": 2025, "jurisdiction": "522300",
        "reason": "pilot obligation PO-2025-15", "project_code": "WM-AR-001",
        "project_name_zh": "望谟造林", "project_name_en": None, "vintage_year": 2023,
        "batch": "QXN-522326-WM-AR-001-2023-01", "blocks": ["QXN-1-400"],
        "retired_on": "2026-03-20", "audit_hash": "ab" * 32}


def test_the_obligation_settled_is_a_line_of_the_certificate():
    lines = {en: value for _, en, value in certificate._lines(VIEW)}
    assert lines["Obligation settled"] == "PO-2025-15"
    assert lines["Reason"] == "pilot obligation PO-2025-15"
    page = certificate.render_html(VIEW, "https://example.org/verify")
    assert "履约义务" in page and "<td>PO-2025-15</td>" in page
    assert len(certificate.render_pdf(VIEW, "https://example.org/verify")) > 1000


def test_no_obligation_line_without_one():
    plain = {**VIEW, "purpose": "voluntary", "reason": None}
    lines = {en: value for _, en, value in certificate._lines(plain)}
    assert "Obligation settled" not in lines and lines["Reason"] == "-"
    assert certificate.obligation_of({"reason": "PO-20251-1 typo"}) is None
