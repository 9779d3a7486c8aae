"""The shell's spreadsheet reader: encodings, header search, blank cells, ragged rows, header
problems, XLSX, files that are not spreadsheets, and the row limit."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from ecovalue.spreadsheet import (
    EmptySpreadsheet,
    NotASpreadsheet,
    RowError,
    TooManyRows,
    normalize_header,
    read_spreadsheet,
    xlsx_rows,
)

ALIASES = {
    "county": ("县(市)", "县"),
    "name_zh": ("名称", "产品名称"),
    "quantity": ("数量",),
    "unit": ("单位",),
}
REQUIRED = ("county", "name_zh")


def read(data: bytes, **kwargs):
    kwargs.setdefault("required", REQUIRED)
    return read_spreadsheet(data, ALIASES, **kwargs)


def workbook(*sheets: tuple[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_gbk_file_with_chinese_headers():
    data = "县(市),名称,数量,单位\n望谟县,古茶园,3.2,t\n".encode("gbk")
    assert "县(市)".encode("gbk") in data and data.decode("utf-8", "replace") != data.decode("gbk")
    sheet = read(data)
    assert (sheet.format, sheet.encoding, sheet.header_row) == ("csv", "gbk", 1)
    assert sheet.headers == {"county": "县(市)", "name_zh": "名称", "quantity": "数量",
                             "unit": "单位"}
    assert sheet.rows() == [(2, {"county": "望谟县", "name_zh": "古茶园", "quantity": "3.2",
                                 "unit": "t"})]


def test_gb18030_characters_outside_gbk_are_read():
    name = "䶮茶园"  # U+4DAE is in GB18030, not in GBK
    with pytest.raises(UnicodeEncodeError):
        name.encode("gbk")
    sheet = read(f"县,名称\n522326,{name}\n".encode("gb18030"))
    assert sheet.encoding == "gbk" and sheet.columns["name_zh"] == [name]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_with_or_without_bom(encoding):
    sheet = read("县(市),名称\n522326,茶园\n".encode(encoding))
    assert sheet.encoding == "utf-8"
    assert sheet.headers["county"] == "县(市)"  # the BOM is not part of the first header
    assert sheet.columns == {"county": ["522326"], "name_zh": ["茶园"]}


def test_title_rows_above_the_header_are_skipped_and_rows_keep_their_numbers():
    text = ("望谟县生态产品目录清单,,,\n"
            "填报单位：望谟县自然资源局,,,\n"
            "县(市),名称,数量,单位\n"
            "522326,茶园,1,t\n"
            ",,,\n"
            "\n"
            "522326,油茶林,2,万斤\n")
    sheet = read(text.encode("gbk"))
    assert sheet.header_row == 3
    assert sheet.numbers == [4, 7]
    assert [number for number, _ in sheet.rows()] == [4, 7]
    assert sheet.ignored == []


def test_a_quoted_line_break_in_a_title_counts_as_one_row():
    text = '"望谟县\n生态产品目录"\n县,名称\n522326,"茶\n园"\n522326,油茶林\n'
    sheet = read(text.encode())
    assert sheet.header_row == 2 and sheet.numbers == [3, 4]
    assert sheet.columns["name_zh"] == ["茶\n园", "油茶林"]


def test_header_spelling_case_width_spacing_and_marks_are_ignored():
    assert normalize_header(" Name_ZH* ") == normalize_header("name zh") == "namezh"
    assert normalize_header("县（市）") == normalize_header("县(市)")
    sheet = read("县（市）,* NAME-zh ,QUANTITY\n522326,茶园,1\n".encode())
    assert sheet.headers == {"county": "县（市）", "name_zh": "* NAME-zh", "quantity": "QUANTITY"}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters(delimiter):
    text = delimiter.join(["县", "名称", "数量"]) + "\n" + delimiter.join(
        ["522326", "茶园, 古树", "1,5"]) + "\n"
    if delimiter == ",":
        text = '县,名称,数量\n522326,"茶园, 古树","1,5"\n'
    sheet = read(text.encode())
    assert sheet.rows() == [(2, {"county": "522326", "name_zh": "茶园, 古树", "quantity": "1,5"})]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_line_endings(ending):
    sheet = read(ending.join(["标题", "县,名称", "522326,茶园", "522327,油茶", ""]).encode())
    assert sheet.header_row == 2 and sheet.columns["name_zh"] == ["茶园", "油茶"]


def test_blank_cells_are_none_never_an_empty_string():
    sheet = read("县,名称,数量,单位\n522326,  茶园  ,   ,\n522326,油茶\n".encode())
    assert sheet.rows() == [
        (2, {"county": "522326", "name_zh": "茶园", "quantity": None, "unit": None}),
        (3, {"county": "522326", "name_zh": "油茶", "quantity": None, "unit": None}),  # short
    ]


def test_every_ragged_row_is_an_error_and_the_others_are_read_as_usual():
    good = ["522326,茶园,1,t", "522326,油茶, ,t,,", "522326,林下菌,3"]  # trailing blanks: fine
    well_formed = read(("县,名称,数量,单位\n" + "\n".join(good) + "\n").encode())
    assert well_formed.errors == []
    ragged = read(("县,名称,数量,单位\n" + "\n".join(
        [good[0], "522326,坏行,1,t,多余", good[1], good[2], "522326,又坏,1,t,,,x"]) + "\n"
    ).encode())
    assert ragged.errors == [
        RowError(3, "has values beyond the last named column (5 fields; the header has 4)"),
        RowError(6, "has values beyond the last named column (7 fields; the header has 4)")]
    rows = dict(ragged.rows())
    assert [rows[n] for n in (2, 4, 5)] == [r for _, r in well_formed.rows()]
    assert rows[4]["quantity"] is None and rows[5]["unit"] is None
    assert rows[3] == {"county": "522326", "name_zh": "坏行", "quantity": "1", "unit": "t"}


def test_a_ragged_first_data_row_is_reported_too():
    sheet = read("县,名称\n522326,茶园,多余\n522326,油茶\n".encode())
    assert [e.row for e in sheet.errors] == [2]
    assert sheet.columns == {"county": ["522326", "522326"], "name_zh": ["茶园", "油茶"]}


def test_a_record_the_parser_cannot_read_is_a_row_error():
    huge = "x" * 200_000  # beyond the csv module's field limit
    sheet = read(f'县,名称\n522326,茶园\n522326,茶园,多余\n522326,"{huge}"\n'.encode())
    assert sheet.errors[0].row == 3
    assert sheet.errors[-1].row == 4 and "cannot be read" in sheet.errors[-1].message


def test_duplicate_unknown_and_missing_headers_are_reported_not_read():
    sheet = read("名称,产品名称,备注,,Remark\n茶园,重复,注,x,y\n".encode())
    assert sheet.headers == {"name_zh": "名称"}
    assert sheet.duplicates == [("产品名称", "name_zh")]
    assert sheet.ignored == ["备注", "Remark"]  # as written; the blank header is no column
    assert sheet.missing == ["county"]
    assert sheet.columns == {"name_zh": ["茶园"]}


def test_the_header_is_the_row_naming_every_required_field_else_the_most_fields():
    text = "名称,数量\n县,名称,数量\n522326,茶园,1\n"
    assert read(text.encode()).header_row == 2
    sheet = read("标题\n名称,数量\n茶园,1\n".encode())
    assert sheet.header_row == 2 and sheet.missing == ["county"]
    assert read("县,名称\n522326,茶园\n".encode(), required=()).header_row == 1


def test_rows_with_values_only_under_unknown_headers_are_left_out():
    sheet = read("县,名称,备注\n,,只有备注\n522326,茶园,\n".encode())
    assert sheet.numbers == [3]


def test_xlsx_with_a_title_row_keeps_numbers_and_strips_text():
    data = workbook(("Sheet1", [
        ["望谟县生态产品目录清单"],
        ["县(市)", "名称", "数量", None, "备注"],
        [522326, "  茶园 ", 3.2, "right of the header", "注"],
        [None, None, None],
        [522326101201, "油茶", "   ", None, None],
    ]))
    sheet = read(data)
    assert (sheet.format, sheet.encoding, sheet.header_row) == ("xlsx", "xlsx", 2)
    assert sheet.ignored == ["备注"] and sheet.errors == []
    assert sheet.rows() == [(3, {"county": 522326, "name_zh": "茶园", "quantity": 3.2}),
                            (5, {"county": 522326101201, "name_zh": "油茶", "quantity": None})]


def test_xlsx_reads_the_sheet_named_by_the_caller_else_the_first():
    data = workbook(("说明", [["本表说明"]]), ("实物量", [["县", "名称"], [522326, "茶园"]]))
    assert read(data, sheet_names=("实物量",)).columns["name_zh"] == ["茶园"]
    with pytest.raises(EmptySpreadsheet):
        read(workbook(("说明", [])))
    assert read(data).missing == ["county", "name_zh"]  # the first sheet has no header
    assert xlsx_rows(data, ("实物量",)) == [("县", "名称"), (522326, "茶园")]


def _zip(names: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in names.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "error", "message"), [
    (b"", EmptySpreadsheet, "empty"),
    (b"\n\n ,, \n", EmptySpreadsheet, "no header row"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, NotASpreadsheet, ".xls"),
    (b"PK\x03\x04 not a zip", NotASpreadsheet, "zip archive but not an XLSX"),
    (_zip({"content.xml": b"<office/>"}), NotASpreadsheet, "zip archive but not an XLSX"),
    (_zip({"xl/workbook.xml": b"garbage"}), NotASpreadsheet, "workbook cannot be read"),
    (b"name,\x01\x02\x03\x04\x05\x06\n", NotASpreadsheet, "binary"),  # decodes, but controls
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), NotASpreadsheet, "UTF-8 or GBK"),
    (b"\x00\x01\x02binary", NotASpreadsheet, "neither CSV"),
    (b"\xff\xfe\xfd" * 100, NotASpreadsheet, "UTF-8 or GBK"),
])
def test_files_that_are_not_spreadsheets(data, error, message):
    with pytest.raises(error) as caught:
        read(data)
    assert message in caught.value.message


def test_the_row_limit_counts_data_rows_only():
    text = "标题\n县,名称\n" + "".join(f"522326,茶园{i}\n\n" for i in range(5))
    assert len(read(text.encode(), max_rows=5)) == 5
    with pytest.raises(TooManyRows):
        read(text.encode(), max_rows=4)
    rows = [["县", "名称"], *([522326, f"茶园{i}"] for i in range(5))]
    assert len(read(workbook(("Sheet", rows)), max_rows=5)) == 5
    with pytest.raises(TooManyRows):
        read(workbook(("Sheet", rows)), max_rows=4)
    with pytest.raises(TooManyRows):
        xlsx_rows(workbook(("Sheet", rows)), max_rows=5)
