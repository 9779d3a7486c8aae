"""Printable pages (pure: no Flask, no database): the one HTML template the statements of
benefit sharing (household, village) and of compensation (settlement) are printed from, so
that a county office's printouts look alike whatever produced them.

A page is a title, a body of headings and tables, and a footnote; every value is escaped
(a name typed by one user cannot become markup on another user's screen); numbers (`int`)
are right-aligned; amounts are given as text by the caller (`yuan`), exactly, never floats.
Labels are Chinese first with English alongside; the page prints without its links.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:4px 6px;font-size:13px}}th{{background:#eee}}
td.n{{text-align:right}}@media print{{a{{display:none}}}}</style></head>
<body><h1>{title}</h1>{body}<p><small>{units}{note}</small></p></body></html>"""

#: the footnote of a page that shows amounts and (masked) bank accounts
AMOUNTS_NOTE = "金额单位：元（分）Amounts in yuan (fen). "
MASKED_NOTE = "银行账号已遮蔽 Bank accounts masked. "


def yuan(fen: int, *, grouped: bool = False) -> str:
    """Fen as yuan text with two decimals, exactly (no float): 135000 -> '1350.00', or
    '1,350.00' `grouped` in thousands (the house's one rendering of fen as yuan)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole:,}.{cents:02d}" if grouped else f"{sign}{whole}.{cents:02d}"


def yuan_grouped(fen: int) -> str:
    """`yuan` grouped in thousands: 123456789 -> '1,234,567.89'."""
    return yuan(fen, grouped=True)


def escape(value: Any) -> str:
    """A value as escaped text (None as nothing)."""
    return html.escape("" if value is None else str(value))


def heading(text: str, level: int = 2) -> str:
    return f"<h{level}>{escape(text)}</h{level}>"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table: a header row, then one row per sequence; ints right-aligned."""
    def cell(v: Any) -> str:
        cls = ' class="n"' if isinstance(v, int) and not isinstance(v, bool) else ""
        return f"<td{cls}>{escape(v)}</td>"

    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" +
            "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows) + "</table>")


def page(title: str, body: str, *, note: str = "", units: str = AMOUNTS_NOTE + MASKED_NOTE
         ) -> str:
    """The whole page: `body` is markup made with `heading` and `table` (already escaped);
    `title` and `note` are text (escaped here)."""
    return _PAGE.format(title=escape(title), body=body, units=units, note=escape(note))
