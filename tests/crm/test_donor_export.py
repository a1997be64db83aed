import csv
import io

from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb

from tests.helpers import invalid


async def _import_csv(stubs, tenant, text: str) -> pb.ImportDonorsResponse:
    data = text.encode()
    requests = [pb.ImportDonorsRequest(csv_chunk=data[i:i + 100]) for i in range(0, len(data), 100)]
    return [r async for r in stubs.donors.ImportDonors(iter(requests), metadata=tenant.md)][-1]


async def _export(stubs, tenant, **kw) -> list[pb.ExportDonorsResponse]:
    return [r async for r in stubs.donors.ExportDonors(pb.ExportDonorsRequest(**kw), metadata=tenant.md)]


SOURCE = (
    "external_id,type,first_name,last_name,email,phone,spouse_first_name,spouse_last_name,spouse_email,"
    "address_street,address_city,address_zip,address_country,journey_stage,last_contact_time,tags,notes,"
    "custom_fields\n"
    'r-1,couple,Ada,Lovelace,ada@example.org,+1 202 555 0143,William,King,will@example.org,"1 Main St, Apt 2",'
    'London,SW1,GB,cultivation,2026-03-01T10:00:00+00:00,major;board,"two\nlines, ""quoted""","{""a"": [1, 2]}"\n'
    "r-2,individual,Grace,Hopper,,,,,,,,,,prospect,,,,\n"
    "r-3,individual,Alan,Turing,alan@example.org,,,,,,,,,,,gala,,\n"
)


def _comparable(d: donor_pb2.Donor) -> donor_pb2.Donor:
    """The importable part of a donor (no ids, times, etag, totals)."""
    out = donor_pb2.Donor()
    out.CopyFrom(d)
    for name in ("id", "organization_id", "create_time", "update_time", "delete_time", "etag", "giving_totals"):
        out.ClearField(name)
    return out


async def test_export_csv_reimports_into_another_tenant_as_the_same_donors(stubs, tenant, other_tenant):
    assert (await _import_csv(stubs, tenant, SOURCE)).created == 3
    exported = b"".join(r.csv_chunk for r in await _export(stubs, tenant, format=pb.EXPORT_FORMAT_CSV))
    assert exported.decode().splitlines()[0].startswith("external_id,type,first_name")
    summary = await _import_csv(stubs, other_tenant, exported.decode())
    assert (summary.created, summary.rejected) == (3, 0)
    mine = {d.external_id: _comparable(d) for r in await _export(stubs, tenant) for d in r.donors}
    theirs = {d.external_id: _comparable(d) for r in await _export(stubs, other_tenant) for d in r.donors}
    assert mine == theirs and len(mine) == 3
    assert mine["r-1"].notes == 'two\nlines, "quoted"' and list(mine["r-1"].tags) == ["major", "board"]
    assert mine["r-1"].phone == "+12025550143" and mine["r-1"].last_contact_time.seconds > 0


async def test_export_streams_chunks_and_only_the_callers_donors(stubs, tenant, other_tenant):
    rows = "".join(f"x-{i},individual,Donor,{i}\n" for i in range(7))
    await _import_csv(stubs, tenant, "external_id,type,first_name,last_name\n" + rows)
    await _import_csv(stubs, other_tenant, "external_id,first_name\ntheirs-1,Other\n")
    chunks = await _export(stubs, tenant, chunk_size=3)
    assert [len(c.donors) for c in chunks] == [3, 3, 1]
    donors = [d for c in chunks for d in c.donors]
    assert {d.organization_id for d in donors} == {tenant.org_id}
    assert sorted(d.external_id for d in donors) == [f"x-{i}" for i in range(7)]
    csv_chunks = await _export(stubs, tenant, chunk_size=3, format=pb.EXPORT_FORMAT_CSV)
    assert len(csv_chunks) == 3 and b"theirs-1" not in b"".join(c.csv_chunk for c in csv_chunks)


async def test_export_filters_like_list_donors(stubs, tenant):
    await _import_csv(stubs, tenant, SOURCE)
    by_stage = [d.external_id for r in await _export(stubs, tenant, journey_stage="prospect") for d in r.donors]
    by_tag = [d.external_id for r in await _export(stubs, tenant, tag="gala") for d in r.donors]
    assert by_stage == ["r-2"] and by_tag == ["r-3"]


async def test_export_of_nothing_is_a_header_and_bad_chunk_size_is_invalid(stubs, tenant):
    (only,) = await _export(stubs, tenant, format=pb.EXPORT_FORMAT_CSV)
    assert only.csv_chunk.decode().startswith("external_id,")
    await invalid(_export(stubs, tenant, chunk_size=-1), "chunk_size")


async def test_csv_export_neutralises_formulas_and_the_import_restores_them(stubs, tenant, other_tenant):
    """OWASP CSV injection: a cell starting with =, +, -, @, tab or CR is a formula to a
    spreadsheet, so the export prefixes it with '; the import takes that ' off again, so every
    value (an E.164 phone, a value that itself starts with ' before a trigger) round-trips."""
    hostile = {"first_name": "=HYPERLINK(\"http://evil.example\",\"x\")", "last_name": "@SUM(A1:A9)",
               "notes": "\t=1+2", "address_street": "-1 Main St", "address_city": "+City",
               "ai_classification": "'=already quoted", "spouse_first_name": "''-twice"}
    donor = donor_pb2.Donor(external_id="-ext", type=donor_pb2.DONOR_TYPE_COUPLE, phone="+1 202 555 0143",
                            tags=["-neg", "ok"], custom_fields={"k": "v"},
                            address=donor_pb2.Address(street=hostile["address_street"], city=hostile["address_city"]),
                            **{k: v for k, v in hostile.items() if not k.startswith("address_")})
    await stubs.donors.CreateDonor(pb.CreateDonorRequest(donor=donor), metadata=tenant.md)
    exported = b"".join(r.csv_chunk for r in await _export(stubs, tenant, format=pb.EXPORT_FORMAT_CSV)).decode()
    (row,) = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert row["first_name"] == "'" + hostile["first_name"] and row["last_name"] == "'@SUM(A1:A9)"
    assert row["notes"] == "'\t=1+2" and row["address_street"] == "'-1 Main St" and row["address_city"] == "'+City"
    assert row["phone"] == "'+12025550143" and row["external_id"] == "'-ext" and row["tags"] == "'-neg;ok"
    assert row["ai_classification"] == "''=already quoted" and row["spouse_first_name"] == "'''-twice"
    triggers = ("=", "+", "-", "@", "\t", "\r")
    assert not [(k, v) for k, v in row.items() if v.startswith(triggers)]

    summary = await _import_csv(stubs, other_tenant, exported)
    assert (summary.created, summary.rejected) == (1, 0), summary
    mine = [_comparable(d) for r in await _export(stubs, tenant) for d in r.donors]
    theirs = [_comparable(d) for r in await _export(stubs, other_tenant) for d in r.donors]
    assert mine == theirs
    (back,) = theirs
    assert back.phone == "+12025550143" and back.external_id == "-ext" and list(back.tags) == ["-neg", "ok"]
    assert back.ai_classification == "'=already quoted" and back.spouse_first_name == "''-twice"
    assert back.first_name == hostile["first_name"] and back.notes == "\t=1+2"
