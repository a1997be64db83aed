"""Bulk donor import and export: the CSV format, and the rules a row must pass to be imported.

A row is validated with CreateDonor's rules (domain.donors.normalize), plus: an external_id is
required (it is the key of the upsert), and within one batch the last row with an external_id
wins (the earlier ones are rejected). Email addresses take a fast path that gives the same
result as email-validator for plain ASCII addresses: the local part is checked by a dot-atom
pattern and the domain once per import by email-validator itself (domains repeat; the per-address
validation cost as much as the database write).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from chassis.errors import InvalidArgument, Violations
from services.crm.domain import donors as rules

# CSV column -> DonorFields attribute. The order is the export's header.
CSV_COLUMNS: dict[str, str] = {
    "external_id": "external_id", "type": "donor_type", "first_name": "first_name", "last_name": "last_name",
    "email": "email", "phone": "phone", "spouse_first_name": "spouse_first_name",
    "spouse_last_name": "spouse_last_name", "spouse_email": "spouse_email", "address_street": "address_street",
    "address_city": "address_city", "address_state": "address_state", "address_zip": "address_zip",
    "address_country": "address_country", "journey_stage": "journey_stage", "ai_classification": "ai_classification",
    "last_contact_time": "last_contact_at", "tags": "tags", "notes": "notes", "custom_fields": "custom_fields",
    "formal_salutation": "formal_salutation", "informal_salutation": "informal_salutation",
}
TAG_SEPARATOR = ";"
DEFAULT_BATCH = 5000
# A batch also ends at this many bytes of rows (as received): 5000 rows of 10 KB notes and
# 16 KiB custom fields would otherwise be over 100 MB in memory at once, three batches deep.
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_CSV_RECORD = 1_000_000  # characters of one unfinished CSV record kept between chunks

_TYPES = {"": rules.INDIVIDUAL, "individual": rules.INDIVIDUAL, "couple": rules.COUPLE,
          "donor_type_individual": rules.INDIVIDUAL, "donor_type_couple": rules.COUPLE,
          "donor_type_unspecified": rules.INDIVIDUAL}
_TYPE_OUT = {rules.INDIVIDUAL: "individual", rules.COUPLE: "couple"}


@dataclass
class ImportRow:
    """One row as read from the stream: its fields, or the problems found while reading it."""

    number: int
    fields: rules.DonorFields | None
    problems: list[tuple[str, str]] = field(default_factory=list)
    # The DonorFields attributes the source names (a CSV header's columns); None: all of them.
    # An existing donor's other fields are left as they are.
    columns: frozenset[str] | None = None
    size: int = 0  # bytes (or characters) the row took as received: what bounds a batch

    @property
    def external_id(self) -> str:
        return ((self.fields.external_id if self.fields else None) or "").strip()


@dataclass
class Rejection:
    number: int
    external_id: str
    violations: list[tuple[str, str]]


# -- validation ------------------------------------------------------------------------------

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_MAX_DOMAINS = 10_000


class Validator:
    """Validates rows for one import (knows the organization's journey stages)."""

    def __init__(self, stages: set[str]):
        self.stages = stages
        self._domains: dict[str, str | None] = {}

    def _email(self, value: str | None, path: str, v: Violations) -> str | None:
        value = value.strip() if value else None
        if not value:
            return None
        local, at, domain = value.rpartition("@")
        if at and len(local) <= 64 and len(value) <= 254 and value.isascii() and _LOCAL.fullmatch(local):
            if domain not in self._domains:
                if len(self._domains) >= _MAX_DOMAINS:
                    self._domains.clear()
                try:
                    self._domains[domain] = validate_email(f"a@{domain}", check_deliverability=False).domain
                except EmailNotValidError:
                    self._domains[domain] = None
            normalized = self._domains[domain]
            if normalized is not None:
                return f"{local}@{normalized}"
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            v.add(path, f"is not a valid email address: {exc}")
            return None

    def validate(self, row: ImportRow) -> tuple[rules.DonorFields | None, list[tuple[str, str]]]:
        """(normalized fields, []) or (None, the row's violations)."""
        if row.fields is None:
            return None, row.problems or [("row", "could not be read")]
        d = row.fields
        v = Violations()
        v.items.extend(row.problems)
        if not (d.external_id or "").strip():
            v.add("external_id", "is required to import a donor (rows are matched on it)")
        # The emails are checked here (fast path), so normalize sees none. The row's fields are
        # this import's own object: taking them out is cheaper than a copy.
        email, spouse_email = d.email, d.spouse_email
        d.email = d.spouse_email = None
        clean = rules.normalize(d, "", v, self.stages)
        d.email, d.spouse_email = email, spouse_email
        clean.email = self._email(email, "email", v)
        clean.spouse_email = self._email(spouse_email, "spouse_email", v)
        if d.donor_type != rules.COUPLE and spouse_email:
            v.add("spouse_email", "is only for couples (type DONOR_TYPE_COUPLE)")
        if clean.email:  # normalize saw no email: its "needs a name, an email or an id" does not hold
            v.items = [i for i in v.items if not i[1].startswith("a donor needs")]
        if v:
            return None, v.items
        return clean, []


def dedupe(rows: list[tuple[int, str, rules.DonorFields]]) -> tuple[list[tuple[int, str, rules.DonorFields]],
                                                                     list[Rejection]]:
    """Within one batch the last row of an external_id wins; the earlier ones are rejected."""
    last: dict[str, int] = {}
    for i, (_, ext, _) in enumerate(rows):
        last[ext] = i
    if len(last) == len(rows):
        return rows, []
    kept, rejected = [], []
    for i, (number, ext, fields) in enumerate(rows):
        if last[ext] == i:
            kept.append((number, ext, fields))
        else:
            later = rows[last[ext]][0]
            rejected.append(Rejection(number, ext, [("external_id", f"appears again in row {later}, which wins")]))
    return kept, rejected


# -- CSV in ----------------------------------------------------------------------------------


def parse_type(value: str) -> str | None:
    return _TYPES.get(value.strip().lower())


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone")
    return parsed


class CsvReader:
    """CSV chunks in, ImportRows out. A chunk may end anywhere (inside a UTF-8 sequence, a line
    or a quoted field): what is not a whole record yet is kept for the next chunk.

    The work of a chunk is linear in that chunk, whatever is carried over: the carried text is
    kept in pieces with the parity of its quotes, and only the new text is searched for the end
    of a record (a newline outside quotes); a newline carried over was no record's end and
    never becomes one. `scanned` counts the characters searched, for the tests to hold it to."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._carry: list[str] = []  # the unfinished record, in pieces
        self._carry_len = 0
        self._in_quotes = False  # an odd number of quotes carried over
        self._header: list[str] | None = None
        self._index: list[tuple[int, str]] = []
        self._columns: frozenset[str] = frozenset()
        self.rows_read = 0
        self.scanned = 0

    def feed(self, chunk: bytes) -> Iterator[ImportRow]:
        try:
            new = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise InvalidArgument.field("csv_chunk", f"is not UTF-8 text: {exc}") from None
        self.scanned += len(new)
        cut = _last_record_end(new, self._in_quotes)
        if cut:
            text = "".join([*self._carry, new[:cut]])
            rest = new[cut:]
            self._carry, self._carry_len, self._in_quotes = [rest], len(rest), rest.count('"') % 2 == 1
            yield from self._records(text)
        elif new:
            self._carry.append(new)
            self._carry_len += len(new)
            self._in_quotes ^= new.count('"') % 2 == 1
        if self._carry_len > MAX_CSV_RECORD:
            raise InvalidArgument.field("csv_chunk", f"a CSV record longer than {MAX_CSV_RECORD} characters")

    def close(self) -> Iterator[ImportRow]:
        try:
            text = "".join(self._carry) + self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InvalidArgument.field("csv_chunk", f"is not UTF-8 text: {exc}") from None
        self._carry, self._carry_len, self._in_quotes = [], 0, False
        if text.strip():
            yield from self._records(text)

    def _records(self, text: str) -> Iterator[ImportRow]:
        reader = csv.reader(io.StringIO(text, newline=""))
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.rows_read += 1
                yield ImportRow(self.rows_read, None, [("row", f"is not valid CSV: {exc}")])
                continue
            if not record or record == [""]:
                continue
            if self._header is None:
                self._set_header(record)
                continue
            self.rows_read += 1
            yield self._row(record)

    def _set_header(self, record: list[str]) -> None:
        names = [c.strip().lower() for c in record]
        unknown = [n for n in names if n not in CSV_COLUMNS]
        if unknown:
            raise InvalidArgument.field(
                "csv_chunk", f"unknown column {unknown[0]!r} in the CSV header (known: {', '.join(CSV_COLUMNS)})")
        seen = set()
        for n in names:
            if n in seen:
                raise InvalidArgument.field("csv_chunk", f"column {n!r} appears twice in the CSV header")
            seen.add(n)
        if "external_id" not in seen:
            raise InvalidArgument.field("csv_chunk", "the CSV header needs an external_id column")
        self._header = names
        self._index = [(i, CSV_COLUMNS[n]) for i, n in enumerate(names)]
        self._columns = frozenset(CSV_COLUMNS[n] for n in names)

    def _row(self, record: list[str]) -> ImportRow:
        number = self.rows_read
        assert self._header is not None
        size = sum(map(len, record))
        if len(record) != len(self._header):
            ext = restore_cell(record[self._header.index("external_id")]) if len(record) > self._header.index(
                "external_id") else ""
            return ImportRow(number, rules.DonorFields(external_id=ext),
                             [("row", f"has {len(record)} fields, the header has {len(self._header)}")], self._columns,
                             size)
        values: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for i, attr in self._index:
            value = restore_cell(record[i])
            if attr == "donor_type":
                parsed = parse_type(value)
                if parsed is None:
                    problems.append(("type", "must be individual or couple"))
                    parsed = rules.INDIVIDUAL
                values[attr] = parsed
            elif attr == "tags":
                values[attr] = [t for t in value.split(TAG_SEPARATOR) if t.strip()]
            elif attr == "custom_fields":
                values[attr] = _custom_fields(value, problems)
            elif attr == "last_contact_at":
                if value.strip():
                    try:
                        values[attr] = _parse_time(value)
                    except ValueError:
                        problems.append(("last_contact_time", "must be an RFC 3339 time with a zone"))
            elif attr == "address_country":
                values[attr] = value or "US"
            else:
                values[attr] = value if attr in ("first_name", "last_name") else (value or None)
        return ImportRow(number, rules.DonorFields(**values), problems, self._columns, size)


def _custom_fields(value: str, problems: list[tuple[str, str]]) -> dict:
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        problems.append(("custom_fields", "must be a JSON object"))
        return {}
    return parsed


def _last_record_end(text: str, in_quotes: bool) -> int:
    """The index just past the last newline of `text` that ends a record (outside quotes), or
    0; `in_quotes`: `text` starts inside a quoted field. Walks back from the end, newline by
    newline: linear in `text`."""
    pos = text.rfind("\n")
    if pos < 0:
        return 0
    quotes_before = text.count('"', 0, pos) + (1 if in_quotes else 0)
    while pos >= 0:
        if quotes_before % 2 == 0:
            return pos + 1
        prev = text.rfind("\n", 0, pos)
        if prev < 0:
            return 0
        quotes_before -= text.count('"', prev, pos)
        pos = prev
    return 0


# -- CSV out ---------------------------------------------------------------------------------

# CSV injection (OWASP): a spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """A cell a spreadsheet will not run: one that starts with a formula trigger (E.164 phone
    numbers do: +1202...) gets a leading `'`, as OWASP's guidance says; so does one that
    already starts with `'`s before a trigger, so that restore_cell gives back exactly the value."""
    return "'" + value if value.lstrip("'").startswith(FORMULA_TRIGGERS) else value


def restore_cell(value: str) -> str:
    """neutralise_cell undone, on import: `'` then (more `'`s and) a formula trigger loses one `'`."""
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(FORMULA_TRIGGERS) else value


def csv_text(rows: Iterable[Any], *, header: bool) -> str:
    """Stored donors (records with the donor's attributes) as CSV lines with ImportDonors' columns,
    every cell neutralised against formula injection (neutralise_cell)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for r in rows:
        last_contact = r.last_contact_at
        custom = r.custom_fields or {}
        writer.writerow([neutralise_cell(cell) for cell in (
            r.external_id or "", _TYPE_OUT.get(r.donor_type, r.donor_type), r.first_name or "",
            r.last_name or "", r.email or "", r.phone or "", r.spouse_first_name or "",
            r.spouse_last_name or "", r.spouse_email or "", r.address_street or "",
            r.address_city or "", r.address_state or "", r.address_zip or "", r.address_country or "",
            r.journey_stage or "", r.ai_classification or "",
            last_contact.isoformat() if last_contact else "", TAG_SEPARATOR.join(r.tags or []), r.notes or "",
            json.dumps(custom, separators=(",", ":")) if custom else "",
            # The donor's own salutations only: derived ones stay derived through a re-import.
            r.formal_salutation or "", r.informal_salutation or "",
        )])
    return out.getvalue()
