"""Retirement certificates as HTML and PDF, pure: a retirement's public view in, bytes out.

The PDF is drawn with matplotlib's PDF backend (no creation date: the same retirement gives
the same file). Chinese text needs a CJK font; where none is installed (e.g. a minimal
server without fonts-noto-cjk) the PDF prints the English fields only and says so, and the
HTML certificate (rendered by the reader's browser) carries both languages.
"""

from __future__ import annotations

import html
import io
import re
from functools import cache
from typing import Any

CJK_FONTS = ("Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "AR PL UMing CN",
             "Droid Sans Fallback")
PURPOSES = {"thermal_power_pilot": ("火电企业森林生态补偿试点", "thermal-power pilot"),
            "compliance": ("履约", "compliance"), "voluntary": ("自愿注销", "voluntary"),
            "other": ("其他", "other")}


#: an obligation's reference as a retirement's reason names it: the thermal-power pilot's
#: `PO-<year>-<plant party id>` (ledger/pilot/services/obligations.py `obligation_code`,
#: which settles with the reason "pilot obligation PO-2025-15")
OBLIGATION = re.compile(r"\bPO-\d{4}-\d+\b")


def obligation_of(view: dict[str, Any]) -> str | None:
    """The obligation a retirement settles, when its reason names one."""
    found = OBLIGATION.search(view.get("reason") or "")
    return found.group(0) if found else None


@cache
def cjk_font() -> str | None:
    """The first installed font that draws Chinese, or None."""
    from matplotlib import font_manager  # imported here: matplotlib costs ~0.4 s at start-up

    for family in CJK_FONTS:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family),
                                         fallback_to_default=False)
        except ValueError:
            continue
        if path:
            return family
    return None


def _lines(view: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label zh, label en, value) of everything a certificate states."""
    purpose_zh, purpose_en = PURPOSES.get(view["purpose"], (view["purpose"], view["purpose"]))
    obligation = obligation_of(view)
    settles = [("履约义务", "Obligation settled", obligation)] if obligation else []
    return [
        ("证书编号", "Certificate number", view["certificate_number"]),
        ("注销数量", "Quantity retired", f"{view['quantity_t']:,} tCO2e"),
        ("受益方", "Beneficiary", view["beneficiary_name"]),
        ("用途", "Purpose", f"{purpose_zh} / {purpose_en}"),
        ("履约年度", "Compliance year", str(view.get("compliance_year") or "-")),
        ("适用地区", "Jurisdiction", view.get("jurisdiction") or "-"),
        *settles,
        ("注销说明", "Reason", view.get("reason") or "-"),
        ("项目", "Project", f"{view['project_code']} {view['project_name_zh']}"
                           + (f" ({view['project_name_en']})" if view.get("project_name_en")
                              else "")),
        ("年份", "Vintage", str(view["vintage_year"])),
        ("批次", "Batch", view["batch"]),
        ("序列号", "Serial blocks", ", ".join(view["blocks"])),
        ("注销日期", "Retired on", str(view["retired_on"])),
        ("审计链哈希", "Audit-chain hash", view.get("audit_hash") or "-"),
    ]


def render_html(view: dict[str, Any], verify_url: str) -> str:
    rows = "\n".join(
        f"<tr><th>{html.escape(zh)}<br><small>{html.escape(en)}</small></th>"
        f"<td>{html.escape(value)}</td></tr>" for zh, en, value in _lines(view))
    number = html.escape(view["certificate_number"])
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>碳汇注销证明 {number} / Retirement certificate</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto;color:#123}}
th{{text-align:left;vertical-align:top;padding:.4em 1em .4em 0;width:14em}}
td{{padding:.4em 0;word-break:break-all}}small{{color:#567;font-weight:normal}}</style>
</head><body>
<h1>黔西南州林业碳汇注销证明<br><small>Qianxinan forest-carbon retirement certificate</small></h1>
<table>
{rows}
</table>
<p>核验 / Verify: <a href="{html.escape(verify_url)}">{html.escape(verify_url)}</a></p>
<p><small>The credits named above are retired for good: no serial number is ever retired twice.
The audit-chain hash is the hash of the retirement's event in the registry's audit trail.</small>
</p></body></html>
"""


def render_pdf(view: dict[str, Any], verify_url: str) -> bytes:
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure

    font = cjk_font()
    figure = Figure(figsize=(8.27, 11.69))  # A4, inches
    FigureCanvasPdf(figure)
    y = 0.94

    def text(x: float, value: str, size: float = 10, **kwargs: Any) -> None:
        figure.text(x, y, value, fontsize=size, family=font or "DejaVu Sans", va="top",
                    wrap=True, **kwargs)

    if font:
        text(0.08, "黔西南州林业碳汇注销证明", 18, weight="bold")
        y -= 0.035
    text(0.08, "Qianxinan forest-carbon retirement certificate", 14, weight="bold")
    y -= 0.06
    for zh, en, value in _lines(view):
        shown = value if font or value.isascii() else _ascii(view, en, value)
        text(0.08, f"{zh} / {en}" if font else en, 9, color="#345")
        for chunk in _wrap(shown, 80):
            text(0.36, chunk, 9)
            y -= 0.022
        y -= 0.012
    y -= 0.02
    text(0.08, f"Verify: {verify_url}", 8)
    if not font:
        y -= 0.03
        text(0.08, "Chinese text is not drawn: no CJK font is installed on the server "
                   "(install fonts-noto-cjk). The HTML certificate shows it.", 7,
             color="#a00")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="pdf", metadata={"CreationDate": None})
    return buffer.getvalue()


def _ascii(view: dict[str, Any], label: str, value: str) -> str:
    """A field without a CJK font: its English form where one exists, else its ASCII part."""
    if label == "Project":
        return f"{view['project_code']} {view.get('project_name_en') or ''}".strip()
    if label == "Purpose":
        return PURPOSES.get(view["purpose"], ("", view["purpose"]))[1]
    kept = "".join(c if c.isascii() else "?" for c in value)
    return kept if kept.strip("? ") else "(Chinese text, see the HTML certificate)"


def _wrap(value: str, width: int) -> list[str]:
    return [value[i:i + width] for i in range(0, max(len(value), 1), width)]
