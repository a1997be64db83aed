"""The CSV reader's work per chunk is linear in the chunk, never in what it carries over
(issue 9, item 6). Measured on the old reader: a 1 MB chunk of a quote and newlines, then
empty chunks, cost 0.8 s of CPU per chunk, as it counted the quotes of everything carried
over and walked back over every carried newline on each one."""

from __future__ import annotations

from services.crm.domain.donor_import import MAX_CSV_RECORD, CsvReader


def _rows(reader: CsvReader, chunk: bytes) -> list:
    return list(reader.feed(chunk))


def test_work_per_chunk_is_linear_in_the_chunk_not_in_the_carried_text():
    reader = CsvReader()
    assert _rows(reader, b"external_id,notes\n") == []
    opened = b'x-1,"' + b"\n" * (MAX_CSV_RECORD - 1000)  # a quoted field left open, nearly a MB of newlines
    assert _rows(reader, opened) == []
    before = reader.scanned
    for _ in range(200):
        assert _rows(reader, b"") == []
        assert _rows(reader, b"\n") == []  # a newline inside the open quotes ends nothing
    assert reader.scanned - before == 200  # one character a chunk, not the carried megabyte
    # Closing the quote ends that record: a row (its field too long for Python's csv: rejected).
    rows = _rows(reader, b'"\n')
    assert rows[0].number == 1 and rows[0].problems
    assert reader.scanned - before == 200 + 2


def test_records_split_anywhere_read_the_same():
    text = (b'external_id,first_name,notes\nr-1,Ada,"two\nlines, ""quoted"""\nr-2,Grace,\n'
            b'r-3,"Jo\n""se""",x\n')
    whole = [(r.fields.external_id, r.fields.first_name, r.fields.notes) for r in CsvReader().feed(text)]
    assert [w[0] for w in whole] == ["r-1", "r-2", "r-3"]
    for size in (1, 2, 3, 5, 7):
        reader = CsvReader()
        rows = [r for i in range(0, len(text), size) for r in reader.feed(text[i:i + size])]
        rows += list(reader.close())
        assert [(r.fields.external_id, r.fields.first_name, r.fields.notes) for r in rows] == whole, size
