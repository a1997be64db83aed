import uuid

import grpc
from givance.crm.v1 import donor_pb2
from givance.crm.v1 import donor_service_pb2 as pb
from givance.events.v1 import crm_events_pb2

from chassis import events
from tests.helpers import invalid


def _rows(*donors: donor_pb2.Donor, per_message: int = 2) -> list[pb.ImportDonorsRequest]:
    return [pb.ImportDonorsRequest(rows=pb.ImportDonorRows(donors=donors[i:i + per_message]))
            for i in range(0, len(donors), per_message)]


async def _import(stubs, tenant, requests) -> list[pb.ImportDonorsResponse]:
    return [r async for r in stubs.donors.ImportDonors(iter(requests), metadata=tenant.md)]


def _csv(text: str, size: int) -> list[pb.ImportDonorsRequest]:
    data = text.encode()
    return [pb.ImportDonorsRequest(csv_chunk=data[i:i + size]) for i in range(0, len(data), size)]


async def _donors(admin_db, org_id: str) -> dict[str, dict]:
    rows = await admin_db.fetch("SELECT * FROM crm.donors WHERE organization_id = $1::uuid AND deleted_at IS NULL",
                                org_id)
    return {r["external_id"]: dict(r) for r in rows}


def _violations(rejection: pb.ImportRejection) -> dict[str, str]:
    return {v.field: v.description for v in rejection.violations}


async def test_import_creates_then_updates_by_external_id(stubs, tenant, admin_db):
    first = await _import(stubs, tenant, _rows(
        donor_pb2.Donor(external_id="a-1", first_name="Ada", last_name="Lovelace", email="Ada@Example.org",
                        phone="(202) 555-0143", tags=["major"]),
        donor_pb2.Donor(external_id="a-2", first_name="Grace", last_name="Hopper"),
        donor_pb2.Donor(external_id="a-3", type=donor_pb2.DONOR_TYPE_COUPLE, first_name="Marie",
                        last_name="Curie", spouse_first_name="Pierre", journey_stage="cultivation"),
    ))
    final = first[-1]
    assert final.done and (final.rows_read, final.created, final.updated, final.rejected) == (3, 3, 0, 0)
    assert not any(r.done for r in first[:-1]) and len(first) == 2  # one batch, then the summary
    stored = await _donors(admin_db, tenant.org_id)
    assert stored["a-1"]["email"] == "Ada@example.org" and stored["a-1"]["phone"] == "+12025550143"
    assert stored["a-3"]["spouse_first_name"] == "Pierre" and stored["a-3"]["journey_stage"] == "cultivation"

    second = await _import(stubs, tenant, _rows(
        donor_pb2.Donor(external_id="a-1", first_name="Ada", last_name="King", tags=["board"]),
        donor_pb2.Donor(external_id="a-4", first_name="Alan", last_name="Turing"),
        donor_pb2.Donor(external_id="a-2", first_name="Grace", last_name="Hopper", notes="admiral"),
    ))
    final = second[-1]
    assert (final.rows_read, final.created, final.updated, final.rejected) == (3, 1, 2, 0)
    stored = await _donors(admin_db, tenant.org_id)
    assert len(stored) == 4
    assert stored["a-1"]["last_name"] == "King" and stored["a-1"]["tags"] == ["board"]
    assert stored["a-1"]["version"] == 2 and stored["a-2"]["notes"] == "admiral"
    # Imported donors are ordinary donors: GetDonor and ListDonors see them.
    listed = await stubs.donors.ListDonors(pb.ListDonorsRequest(journey_stage="cultivation"), metadata=tenant.md)
    assert [d.external_id for d in listed.donors] == ["a-3"]


async def test_bad_rows_are_rejected_with_field_and_reason_and_the_rest_land(stubs, tenant, admin_db):
    responses = await _import(stubs, tenant, _rows(
        donor_pb2.Donor(external_id="ok-1", first_name="Good", last_name="One"),
        donor_pb2.Donor(external_id="bad-email", first_name="Bad", email="not-an-email"),
        donor_pb2.Donor(first_name="No", last_name="Key"),
        donor_pb2.Donor(external_id="bad-spouse", first_name="Solo", spouse_first_name="Partner"),
        donor_pb2.Donor(external_id="bad-stage", first_name="Lost", journey_stage="nowhere"),
        donor_pb2.Donor(external_id="bad-phone", first_name="Ring", phone="12"),
        donor_pb2.Donor(external_id="ok-2", first_name="Good", last_name="Two"),
    ))
    final = responses[-1]
    assert (final.rows_read, final.created, final.updated, final.rejected) == (7, 2, 0, 5)
    rejected = {r.row_number: r for r in responses[0].rejections}
    assert sorted(rejected) == [2, 3, 4, 5, 6]
    assert rejected[2].external_id == "bad-email" and "email" in _violations(rejected[2])
    assert "external_id" in _violations(rejected[3])
    assert "only for couples" in _violations(rejected[4])["spouse_first_name"]
    assert "journey_stage" in _violations(rejected[5])
    assert "phone" in _violations(rejected[6])
    assert set(await _donors(admin_db, tenant.org_id)) == {"ok-1", "ok-2"}


async def test_duplicate_external_id_in_one_batch_last_one_wins(stubs, tenant, admin_db):
    responses = await _import(stubs, tenant, _rows(
        donor_pb2.Donor(external_id="dup", first_name="First"),
        donor_pb2.Donor(external_id="other", first_name="Other"),
        donor_pb2.Donor(external_id="dup", first_name="Second"),
    ))
    final = responses[-1]
    assert (final.created, final.updated, final.rejected) == (2, 0, 1)
    (rejection,) = responses[0].rejections
    assert rejection.row_number == 1 and rejection.external_id == "dup"
    assert "row 3" in _violations(rejection)["external_id"]
    stored = await _donors(admin_db, tenant.org_id)
    assert stored["dup"]["first_name"] == "Second"


CSV = (
    "external_id,type,first_name,last_name,email,tags,notes,address_country,spouse_first_name,custom_fields\n"
    'c-1,individual,Zoë,Ångström,zoe@example.org,major;board,"Met at the gala, twice.\nSays ""hi"".",se,,\n'
    'c-2,couple,Jean,Dupont,,,"multi\nline\nnote",FR,Marie,"{""source"": ""fair""}"\n'
    "c-3,individual,Bad,Email,nope@,,,,,\n"
    "c-4,individual,No,Newline,,,last line without a newline,,,"
)


async def test_csv_chunks_split_mid_line_and_mid_quoted_field(stubs, tenant, admin_db):
    for size in (1, 7, 64):
        org = tenant if size == 1 else await stubs.sign_up(f"CSV {size}")
        responses = await _import(stubs, org, _csv(CSV, size))
        final = responses[-1]
        assert (final.rows_read, final.created, final.rejected) == (4, 3, 1), size
        assert [r.row_number for r in responses[0].rejections] == [3]
        stored = await _donors(admin_db, org.org_id)
        assert stored["c-1"]["first_name"] == "Zoë" and stored["c-1"]["last_name"] == "Ångström"
        assert stored["c-1"]["notes"] == 'Met at the gala, twice.\nSays "hi".'
        assert stored["c-1"]["tags"] == ["major", "board"] and stored["c-1"]["address_country"] == "SE"
        assert stored["c-2"]["donor_type"] == "couple" and stored["c-2"]["spouse_first_name"] == "Marie"
        assert stored["c-2"]["notes"] == "multi\nline\nnote" and stored["c-2"]["custom_fields"] == '{"source": "fair"}'
        assert stored["c-4"]["notes"] == "last line without a newline"


async def test_unknown_csv_column_is_invalid_argument_and_nothing_is_written(stubs, tenant, admin_db):
    text = "external_id,first_name,favourite_colour\nx-1,Ada,blue\n"
    err = await invalid(_import(stubs, tenant, _csv(text, 5)), "csv_chunk")
    assert "favourite_colour" in err.details()
    assert await _donors(admin_db, tenant.org_id) == {}


async def test_rows_and_csv_in_one_stream_is_invalid_argument(stubs, tenant):
    requests = [*_rows(donor_pb2.Donor(external_id="m-1", first_name="A")),
                pb.ImportDonorsRequest(csv_chunk=b"external_id\nm-2\n")]
    await invalid(_import(stubs, tenant, requests), "csv_chunk")


async def test_import_never_touches_another_tenants_donor(stubs, tenant, other_tenant, admin_db):
    await _import(stubs, other_tenant, _rows(donor_pb2.Donor(external_id="shared", first_name="Theirs")))
    responses = await _import(stubs, tenant, _rows(donor_pb2.Donor(external_id="shared", first_name="Ours")))
    assert (responses[-1].created, responses[-1].updated) == (1, 0)
    assert (await _donors(admin_db, other_tenant.org_id))["shared"]["first_name"] == "Theirs"
    assert (await _donors(admin_db, tenant.org_id))["shared"]["first_name"] == "Ours"


async def test_each_batch_writes_one_imported_event_and_one_audit_entry(stubs, tenant, admin_db):
    await _import(stubs, tenant, _rows(donor_pb2.Donor(external_id="e-1", first_name="Old")))
    await _import(stubs, tenant, _rows(donor_pb2.Donor(external_id="e-1", first_name="New"),
                                       donor_pb2.Donor(external_id="e-2", first_name="Fresh"),
                                       donor_pb2.Donor(external_id="", first_name="Nobody")))
    bodies = await admin_db.fetch("SELECT body FROM crm.outbox WHERE tenant_id = $1::uuid "
                                  "AND routing_key = 'crm.donors.imported' ORDER BY id", tenant.org_id)
    assert len(bodies) == 2
    event = events.unpack(events.parse(bodies[1]["body"]), crm_events_pb2.DonorsImportedEvent)
    stored = await _donors(admin_db, tenant.org_id)
    assert (event.created, event.updated, event.rejected, event.first_row, event.last_row) == (1, 1, 1, 1, 3)
    assert list(event.updated_donor_ids) == [str(stored["e-1"]["id"])]
    assert list(event.created_donor_ids) == [str(stored["e-2"]["id"])]
    uuid.UUID(event.import_id)
    audits = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                     "AND routing_key = 'crm.audit.recorded' AND aggregate_id = $2",
                                     tenant.org_id, event.import_id)
    assert audits == 1


async def test_import_needs_write_permission_and_a_token(stubs, tenant):
    call = stubs.donors.ImportDonors(iter(_rows(donor_pb2.Donor(external_id="t-1"))),
                                     metadata=(("x-tenant-id", tenant.org_id),))
    try:
        [r async for r in call]
        raise AssertionError("an import without a token was accepted")
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_csv_updates_only_the_columns_its_header_names(stubs, tenant, admin_db):
    await _import(stubs, tenant, _rows(donor_pb2.Donor(external_id="p-1", first_name="Ada", last_name="Lovelace",
                                                       email="ada@example.org", notes="keep", tags=["major"])))
    responses = await _import(stubs, tenant, _csv("external_id,email\np-1,ada.king@example.org\n", 10))
    assert (responses[-1].created, responses[-1].updated) == (0, 1)
    stored = (await _donors(admin_db, tenant.org_id))["p-1"]
    assert stored["email"] == "ada.king@example.org"
    assert (stored["last_name"], stored["notes"], stored["tags"]) == ("Lovelace", "keep", ["major"])


async def test_large_import_goes_in_batches_each_with_progress_and_its_event(stubs, tenant, admin_db):
    rows = "".join(f"big-{i},Donor,{i},{'bad@' if i == 7000 else f'd{i}@example.org'}\n" for i in range(12_000))
    responses = await _import(stubs, tenant, _csv("external_id,first_name,last_name,email\n" + rows, 65_536))
    assert [r.rows_read for r in responses] == [5000, 10_000, 12_000, 12_000]
    assert [r.done for r in responses] == [False, False, False, True]
    assert (responses[-1].created, responses[-1].rejected) == (11_999, 1)
    assert [r.row_number for r in responses[1].rejections] == [7001]
    events_written = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE tenant_id = $1::uuid "
                                             "AND routing_key = 'crm.donors.imported'", tenant.org_id)
    assert events_written == 3
    assert len(await _donors(admin_db, tenant.org_id)) == 11_999


async def test_a_row_with_a_hostile_value_is_rejected_alone_naming_the_field(stubs, tenant, admin_db):
    responses = await _import(stubs, tenant, _rows(
        donor_pb2.Donor(external_id="n-1", first_name="Fine"),
        donor_pb2.Donor(external_id="n-2", first_name="Nul\x00Byte"),
        donor_pb2.Donor(external_id="n-3", first_name="Also fine"),
    ))
    final = responses[-1]
    assert (final.created, final.rejected) == (2, 1)
    (rejection,) = responses[0].rejections
    assert rejection.row_number == 2 and "NUL" in _violations(rejection)["first_name"]
    assert set(await _donors(admin_db, tenant.org_id)) == {"n-1", "n-3"}


async def test_import_keeps_a_known_donors_stage_and_sets_a_missing_one(stubs, tenant, admin_db):
    await _import(stubs, tenant, _rows(
        donor_pb2.Donor(external_id="s-1", first_name="Staged", journey_stage="cultivation"),
        donor_pb2.Donor(external_id="s-2", first_name="Unstaged"),
    ))
    final = (await _import(stubs, tenant, _csv(
        "external_id,first_name,journey_stage\ns-1,Staged,major_donor\ns-2,Unstaged,prospect\n", 1000)))[-1]
    assert (final.updated, final.rejected) == (2, 0)
    stored = await _donors(admin_db, tenant.org_id)
    # A stage moves only along the journey; the import does not jump it.
    assert stored["s-1"]["journey_stage"] == "cultivation"
    assert stored["s-2"]["journey_stage"] == "prospect"


async def test_csv_salutations_import_and_export(stubs, tenant):
    final = (await _import(stubs, tenant, _csv(
        "external_id,type,first_name,last_name,spouse_first_name,informal_salutation\n"
        "c-1,couple,John,Smith,Mary,The Smiths\n", 1000)))[-1]
    assert final.created == 1
    [donor] = (await stubs.donors.ListDonors(pb.ListDonorsRequest(), metadata=tenant.md)).donors
    assert (donor.formal_salutation, donor.informal_salutation) == ("John and Mary Smith", "The Smiths")
    chunks = [c async for c in stubs.donors.ExportDonors(
        pb.ExportDonorsRequest(format=pb.EXPORT_FORMAT_CSV), metadata=tenant.md)]
    text = b"".join(c.csv_chunk for c in chunks).decode()
    header, line = text.splitlines()
    row = dict(zip(header.split(","), line.split(","), strict=True))
    assert row["formal_salutation"] == "" and row["informal_salutation"] == "The Smiths"
