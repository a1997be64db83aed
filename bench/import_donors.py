"""bench import_donors: one million donors through DonorService.ImportDonors, against raw COPY.

The rows are generated on the fly from a seeded random generator (the same rows every run,
never all in memory) and streamed as CSV chunks, the form the product recommends for bulk
files (a Donor message per row costs the client more than the CSV line). The baseline is the
same rows written by asyncpg's copy_records_to_table into a bare table with the same columns
and no index, constraint or validation, in the same run: ratio = import rows/s / COPY rows/s.
rss is the crm server's peak resident memory (VmHWM), read after the import.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import grpc
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc

ROWS = 1_000_000
ROWS_PER_CHUNK = 1000
SEED = 20261128

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
         "Wei", "Aisha", "Olga", "Mateo", "Zoë", "Søren", "Priya", "Kenji", "Fatima", "Liam"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Nguyen", "O'Brien", "Müller", "Kowalski", "Chen", "Patel", "Kim", "Okafor", "Andersson"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "example.org", "aol.com"]
CITIES = [("New York", "NY", "100"), ("Chicago", "IL", "606"), ("Boston", "MA", "021"), ("Austin", "TX", "787"),
          ("Seattle", "WA", "981"), ("Denver", "CO", "802"), ("Atlanta", "GA", "303"), ("Portland", "OR", "972")]
AREA_CODES = ["212", "312", "617", "512", "206", "303", "404", "503", "415", "202"]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Rd", "Elm St", "Pine St", "Lake View Blvd"]
# The default journey's stages, weighted like a real pipeline (most donors early on), and some none.
STAGES = ["prospect"] * 30 + ["first_contact"] * 20 + ["cultivation"] * 20 + ["solicitation"] * 10 + \
    ["stewardship"] * 8 + ["major_donor"] * 2 + [""] * 10
# Tags from common to rare: a donor has 0-3 of them.
TAGS = ["newsletter"] * 40 + ["event"] * 20 + ["volunteer"] * 12 + ["monthly"] * 10 + ["board"] * 2 + \
    ["major"] * 5 + ["alumni"] * 8 + ["gala-2025"] * 3
HEADER = ("external_id,type,first_name,last_name,email,phone,spouse_first_name,spouse_last_name,"
          "address_street,address_city,address_state,address_zip,address_country,journey_stage,tags,notes\n")
COLUMNS = ["external_id", "donor_type", "first_name", "last_name", "email", "phone", "spouse_first_name",
           "spouse_last_name", "address_street", "address_city", "address_state", "address_zip", "address_country",
           "journey_stage", "tags", "notes"]


def donors(count: int = ROWS) -> Iterator[tuple]:
    """The bench's donors, one tuple per row in COLUMNS order (tags a list), deterministically."""
    rnd = random.Random(SEED)
    choice, randint, rand = rnd.choice, rnd.randint, rnd.random
    for n in range(count):
        first, last = choice(FIRST), choice(LAST)
        couple = rand() < 0.15
        city, state, zip3 = choice(CITIES)
        email = f"{first.lower()}.{last.lower().replace(chr(39), '')}{n}@{choice(DOMAINS)}" if rand() < 0.85 else ""
        if rand() < 0.003:  # a typo now and then: rejected, the rest goes on
            email = email.rpartition(".")[0] or "no-at-sign"
        phone = f"+1 {choice(AREA_CODES)}-{randint(201, 989)}-{randint(0, 9999):04d}" if rand() < 0.7 else ""
        tags = list(dict.fromkeys(choice(TAGS) for _ in range(randint(0, 3))))
        yield (f"D{n:07d}", "couple" if couple else "individual", first, last, email, phone,
               choice(FIRST) if couple else "", last if couple else "", f"{randint(1, 9999)} {choice(STREETS)}",
               city, state, f"{zip3}{randint(0, 99):02d}", "US", choice(STAGES), tags,
               "Met at the spring gala" if rand() < 0.05 else "")


def _csv_line(row: tuple) -> str:
    values = list(row)
    values[14] = ";".join(values[14])
    return ",".join(f'"{v}"' if ("," in v or '"' in v) else v for v in values) + "\n"


async def _chunks(count: int) -> AsyncIterator[pb.ImportDonorsRequest]:
    lines = [HEADER]
    for row in donors(count):
        lines.append(_csv_line(row))
        if len(lines) >= ROWS_PER_CHUNK:
            yield pb.ImportDonorsRequest(csv_chunk="".join(lines).encode())
            lines = []
    if lines:
        yield pb.ImportDonorsRequest(csv_chunk="".join(lines).encode())


@dataclass
class Figures:
    rows: int
    seconds: float
    created: int
    updated: int
    rejected: int
    baseline_seconds: float
    rss_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def baseline(self) -> float:
        return self.rows / self.baseline_seconds


async def run_import(crm_address: str, metadata, count: int, progress) -> tuple[float, pb.ImportDonorsResponse]:
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = donor_service_pb2_grpc.DonorServiceStub(channel)
        t0 = time.perf_counter()
        last = None
        reported = 0
        async for resp in stub.ImportDonors(_chunks(count), metadata=metadata):
            last = resp
            if resp.rows_read - reported >= 100_000:
                reported = resp.rows_read
                progress(f"import_donors: {resp.rows_read} rows read, {resp.created} created, "
                         f"{resp.rejected} rejected ({time.perf_counter() - t0:.0f}s)")
        elapsed = time.perf_counter() - t0
    if last is None or not last.done:
        raise RuntimeError("import_donors: the stream ended without a summary")
    return elapsed, last


async def run_baseline(database_url: str, count: int) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP TABLE IF EXISTS public.bench_bare_donors")
        await conn.execute("CREATE TABLE public.bench_bare_donors (" + ", ".join(
            f"{c} text[]" if c == "tags" else f"{c} text" for c in COLUMNS) + ")")
        t0 = time.perf_counter()
        await conn.copy_records_to_table("bench_bare_donors", records=donors(count), columns=COLUMNS,
                                         schema_name="public")
        elapsed = time.perf_counter() - t0
        await conn.execute("DROP TABLE public.bench_bare_donors")
        return elapsed
    finally:
        await conn.close()


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def measure(crm_address: str, metadata, database_url: str, crm_pid: int, progress,
                  count: int = ROWS) -> Figures:
    progress(f"import_donors: streaming {count} generated donors as CSV into ImportDonors")
    seconds, summary = await run_import(crm_address, metadata, count, progress)
    rss = peak_rss_mb(crm_pid)
    progress(f"import_donors: {seconds:.1f}s; baseline: raw COPY of the same rows into a bare table")
    baseline = await run_baseline(database_url, count)
    return Figures(rows=summary.rows_read, seconds=seconds, created=summary.created, updated=summary.updated,
                   rejected=summary.rejected, baseline_seconds=baseline, rss_mb=rss)
