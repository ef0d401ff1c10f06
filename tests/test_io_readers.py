"""Readers: every format, encodings, row numbers, the awkward shapes real exports have."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.io import InputError, Reject, detect_encoding, read_columns, read_rows

JA_TITLES = ["情報システム部 部長", "営業企画課 課長", "学生"]


def _rows(path: Path, **kwargs: object) -> list[tuple[int, dict[str, str | None]]]:
    return list(read_rows(path, **kwargs))  # type: ignore[arg-type]


def test_csv_row_numbers_count_header_as_line_one(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('id,note\n1,plain\n2,"two\nlines"\n\n3,after blank\n', encoding="utf-8")
    rows = _rows(path)
    assert [number for number, _ in rows] == [2, 3, 6]
    assert rows[1][1] == {"id": "2", "note": "two\nlines"}


def test_cp932_is_detected_without_being_told(tmp_path: Path) -> None:
    path = tmp_path / "ja.csv"
    body = "id,役職\r\n" + "".join(f"{i},{t}\r\n" for i, t in enumerate(JA_TITLES))
    path.write_bytes(body.encode("cp932"))
    assert detect_encoding(path) == "cp932"
    assert [row["役職"] for _, row in _rows(path)] == JA_TITLES
    assert read_columns(path) == ["id", "役職"]


def test_utf8_bom_stays_out_of_the_first_header(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,title\r\n1,部長\r\n".encode())
    assert _rows(path) == [(2, {"id": "1", "title": "部長"})]
    # Even when the caller insists on plain utf-8, the BOM never reaches the column name.
    assert _rows(path, encoding="utf-8") == [(2, {"id": "1", "title": "部長"})]


def test_plain_utf8_and_explicit_shift_jis_alias(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("id,title\n1,課長\n", encoding="utf-8")
    assert detect_encoding(path) == "utf-8"
    sjis = tmp_path / "s.csv"
    sjis.write_bytes("id,title\n1,課長\n".encode("cp932"))
    assert _rows(sjis, encoding="Shift_JIS")[0][1]["title"] == "課長"


def test_trailing_empty_column_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "trail.csv"
    path.write_bytes(b"Prospect ID,Converted,\r\nabc,1,\r\ndef,0,\r\n")
    assert _rows(path) == [
        (2, {"Prospect ID": "abc", "Converted": "1"}),
        (3, {"Prospect ID": "def", "Converted": "0"}),
    ]
    assert read_columns(path) == ["Prospect ID", "Converted"]


def test_short_and_long_rows_are_rejected_with_their_line(tmp_path: Path) -> None:
    # issue #13 item 6: a short row was padded with None and decided on empty cells.
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2\n1,2,3,4\n5,6,7\n8\n", encoding="utf-8")
    rejects: list[Reject] = []
    rows = list(read_rows(path, on_reject=rejects.append))
    assert rows == [(4, {"a": "5", "b": "6", "c": "7"})]
    assert [(r.row, r.value, r.reason) for r in rejects] == [
        (2, "1,2", "the row has 2 values but the header has 3 names"),
        (3, "4", "the row has 4 values but the header has 3 names"),
        (5, "8", "the row has 1 value but the header has 3 names"),
    ]
    with pytest.raises(InputError, match="2 values") as caught:
        _rows(path)
    assert caught.value.line == 2


def test_tsv(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("id\tname\n1\tA, Inc.\n", encoding="utf-8")
    assert _rows(path) == [(2, {"id": "1", "name": "A, Inc."})]


def test_undecodable_bytes_name_file_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    # Valid UTF-8 for the whole detection sample, then a byte that is neither UTF-8 nor text.
    path.write_bytes(b"id,t\n" + b"1,x\n" * 300_000 + b"2,\xff\xfe\n")
    with pytest.raises(InputError) as caught:
        _rows(path)
    error = caught.value
    assert error.file == str(path)
    assert error.line == 300_002
    assert "byte offset 1200007" in str(error)
    assert "--encoding" in str(error)


def test_repeated_header_names_are_left_unread(tmp_path: Path) -> None:
    # HubSpot's "export all properties" names two columns "Billing Contact": the file
    # is read, and neither ambiguous column is (engine.io.records.check_columns tells a
    # mapping that needs one, tests/test_presets_samples.py).
    path = tmp_path / "dup.csv"
    path.write_text("id,x,x\n1,2,3\n", encoding="utf-8")
    assert [row for _, row in _rows(path)] == [{"id": "1"}]


def test_jsonl_line_numbers_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    lines = [
        json.dumps({"id": "a", "n": 3, "ok": True, "x": None}),
        "",
        "{not json",
        "[1, 2]",
        json.dumps({"id": "b", "title": "部長", "nested": {"k": 1}}, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects: list[Reject] = []
    rows = list(read_rows(path, on_reject=rejects.append))
    assert rows == [
        (1, {"id": "a", "n": "3", "ok": "true", "x": None}),
        (5, {"id": "b", "title": "部長", "nested": '{"k": 1}'}),
    ]
    assert [r.row for r in rejects] == [3, 4]
    assert "not valid JSON" in rejects[0].reason


def test_parquet_rows_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.io.readers as readers

    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 3)
    path = tmp_path / "p.parquet"
    table = pa.table({"id": [f"L{i}" for i in range(7)], "employees": [10, None, 3, 4, 5, 6, 7]})
    pq.write_table(table, path, row_group_size=2)
    rows = _rows(path)
    assert [number for number, _ in rows] == list(range(1, 8))
    assert rows[1][1] == {"id": "L1", "employees": None}
    assert rows[0][1]["employees"] == "10"
    assert read_columns(path) == ["id", "employees"]


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        _rows(tmp_path / "nope.csv")
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"PK")
    with pytest.raises(InputError, match="extension"):
        _rows(other)


def test_csv_lists_align_with_the_header_like_dict_rows(tmp_path: Path) -> None:
    from engine.io.readers import read_csv_lists, read_header

    path = tmp_path / "ragged.csv"
    path.write_text("a,,c\n1,2\n\n1,2,3,4\n5,6,7,\n8,9,10\n", encoding="utf-8")
    header = read_header(path)
    assert header == ["a", "", "c"]
    rejects: list[Reject] = []
    rows = list(read_csv_lists(path, header, on_reject=rejects.append))
    assert rows == [(5, ["5", "6", "7", ""]), (6, ["8", "9", "10"])]
    assert [(r.row, r.value) for r in rejects] == [(2, "1,2"), (4, "4")]
    dicts = list(read_rows(path, on_reject=lambda r: None))
    assert dicts == [(n, {"a": v[0], "c": v[2]}) for n, v in rows]
    with pytest.raises(InputError, match="header changed"):
        list(read_csv_lists(path, ["a", "b", "c"]))


def test_unterminated_quote_is_an_error_not_swallowed_rows(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('lead_id,title\nA,"unterminated\nB,ok\nC,ok\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(read_rows(path))
    assert caught.value.line == 2 and "never closed" in str(caught.value)


def test_multiline_quoted_last_row_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('lead_id,title\nA,ok\nB,"two\nlines"\n', encoding="utf-8")
    rows = list(read_rows(path))
    assert rows[-1] == (3, {"lead_id": "B", "title": "two\nlines"})
