"""Clients and contacts of a client-service firm, on the real servers."""

from __future__ import annotations

import uuid

import grpc
import pytest
from givance.crm.v1 import client_pb2, donor_pb2
from givance.crm.v1 import client_service_pb2 as pb
from givance.events.v1 import crm_events_pb2
from google.protobuf import field_mask_pb2

from chassis.crypto import Keyring
from services.crm.settings import DEV_ENCRYPTION_KEYS
from tests.crm.every_rpc import EveryRpc
from tests.helpers import error_reason, fails, field_violations, invalid, usd


def _client(**kw) -> client_pb2.Client:
    base = dict(name="Acme Bakery LLC", client_type=client_pb2.CLIENT_TYPE_BUSINESS,
                client_number=f"C-{uuid.uuid4().hex[:6]}", email="owner@acme.example",
                address=donor_pb2.Address(street="1 Main St", city="Springfield", state="IL", postal_code="62701"),
                tax_id="12-3456789", payment_terms=client_pb2.PAYMENT_TERMS_NET_15, credit_limit=usd(5000, 500_000_000))
    base.update(kw)
    return client_pb2.Client(**base)


async def _create(stubs, tenant, **kw) -> client_pb2.Client:
    return (await stubs.clients.CreateClient(pb.CreateClientRequest(client=_client(**kw)),
                                             metadata=tenant.md)).client


async def test_client_round_trip_masks_and_seals_the_tax_id(stubs, tenant, admin_db):
    c = await _create(stubs, tenant, fiscal_year_end_month=12)
    assert c.tax_id == "•••• 6789" and c.payment_terms == client_pb2.PAYMENT_TERMS_NET_15
    assert (c.credit_limit.units, c.credit_limit.nanos, c.credit_limit.currency_code) == (5000, 500_000_000, "USD")
    assert c.creator_id == tenant.user_id and c.status == client_pb2.CLIENT_STATUS_ACTIVE
    got = (await stubs.clients.GetClient(pb.GetClientRequest(id=c.id), metadata=tenant.md)).client
    assert got == c
    row = await admin_db.fetchrow("SELECT * FROM crm.clients WHERE id = $1::uuid", c.id)
    assert "3456789" not in str(dict(row)) and row["tax_id_sealed"].startswith("v1.crmdev1.")
    aad = f"crm.clients.tax_id:{tenant.org_id}:{c.id}".encode()
    clear = Keyring(DEV_ENCRYPTION_KEYS).open(row["tax_id_sealed"], aad)
    assert clear == b"12-3456789"
    # the audit entry and the event never carry it in clear either
    outbox = await admin_db.fetch("SELECT routing_key, body FROM crm.outbox WHERE aggregate_id = $1", c.id)
    assert {r["routing_key"] for r in outbox} >= {"crm.client.created", "crm.audit.recorded"}
    assert all(b"3456789" not in bytes(r["body"]) for r in outbox)


async def test_client_number_unique_per_organization(stubs, tenant, other_tenant):
    c = await _create(stubs, tenant)
    err = await fails(stubs.clients.CreateClient(pb.CreateClientRequest(client=_client(client_number=c.client_number)),
                                                 metadata=tenant.md), grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(err) == "CLIENT_NUMBER_TAKEN"
    await _create(stubs, other_tenant, client_number=c.client_number)  # another firm may use it


async def test_update_with_mask_etag_and_tax_id(stubs, tenant):
    c = await _create(stubs, tenant)
    req = pb.UpdateClientRequest(client=client_pb2.Client(id=c.id, etag=c.etag, tax_id="98-7654321", name="ignored",
                                                          status=client_pb2.CLIENT_STATUS_PROSPECT),
                                 update_mask=field_mask_pb2.FieldMask(paths=["status", "tax_id"]))
    u = (await stubs.clients.UpdateClient(req, metadata=tenant.md)).client
    assert u.status == client_pb2.CLIENT_STATUS_PROSPECT and u.tax_id == "•••• 4321" and u.name == c.name
    assert u.etag != c.etag
    await fails(stubs.clients.UpdateClient(req, metadata=tenant.md), grpc.StatusCode.ABORTED)  # stale etag


async def test_bad_input_names_the_field(stubs, tenant, admin_db):
    before = await admin_db.fetchval("SELECT count(*) FROM crm.clients WHERE organization_id = $1::uuid",
                                     tenant.org_id)
    bad = _client(name=" ", email="nope", website="ftp://x", fiscal_year_end_month=13, credit_limit=usd(-5),
                  assigned_manager_id="not-an-id")
    err = await invalid(stubs.clients.CreateClient(pb.CreateClientRequest(client=bad), metadata=tenant.md),
                        "client.name")
    assert set(field_violations(err)) >= {"client.name", "client.email", "client.website",
                                          "client.fiscal_year_end_month", "client.credit_limit",
                                          "client.assigned_manager_id"}
    after = await admin_db.fetchval("SELECT count(*) FROM crm.clients WHERE organization_id = $1::uuid",
                                    tenant.org_id)
    assert after == before


async def test_manager_must_be_an_active_member(stubs, tenant):
    err = await invalid(stubs.clients.CreateClient(
        pb.CreateClientRequest(client=_client(assigned_manager_id=str(uuid.uuid4()))), metadata=tenant.md),
        "client.assigned_manager_id")
    assert field_violations(err)["client.assigned_manager_id"] == "is not an active member of the organization"
    c = await _create(stubs, tenant, assigned_manager_id=tenant.user_id)  # the caller may take it
    assert c.assigned_manager_id == tenant.user_id


async def test_request_id_returns_the_first_client(stubs, tenant):
    req = pb.CreateClientRequest(client=_client(), request_id=f"r-{uuid.uuid4()}")
    a = (await stubs.clients.CreateClient(req, metadata=tenant.md)).client
    b = (await stubs.clients.CreateClient(req, metadata=tenant.md)).client
    assert a.id == b.id


async def test_list_filters_search_and_pages(stubs, tenant):
    names = [f"Zeta {i} Partners" for i in range(5)]
    for n in names:
        await _create(stubs, tenant, name=n, status=client_pb2.CLIENT_STATUS_PROSPECT)
    await _create(stubs, tenant, name="Zeta Other", status=client_pb2.CLIENT_STATUS_ACTIVE)
    seen, token = [], ""
    while True:
        resp = await stubs.clients.ListClients(pb.ListClientsRequest(
            page_size=2, page_token=token, query="zeta partners", status=client_pb2.CLIENT_STATUS_PROSPECT),
            metadata=tenant.md)
        seen += [c.name for c in resp.clients]
        token = resp.next_page_token
        if not token:
            break
    assert seen == names
    await invalid(stubs.clients.ListClients(pb.ListClientsRequest(page_size=-1), metadata=tenant.md), "page_size")


async def test_one_primary_contact_per_client_by_the_database(stubs, tenant, admin_db):
    c = await _create(stubs, tenant)
    first = (await stubs.clients.CreateContact(pb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=c.id, first_name="Ann", last_name="Lee", is_primary=True, email="ann@acme.example")),
        metadata=tenant.md)).contact
    err = await fails(stubs.clients.CreateContact(pb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=c.id, first_name="Bob", last_name="Ng", is_primary=True)), metadata=tenant.md),
        grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "PRIMARY_CONTACT_EXISTS"
    # the index itself refuses a second primary, whatever the service does
    with pytest.raises(Exception, match="contacts_one_primary"):
        await admin_db.execute(
            "INSERT INTO crm.contacts (id, organization_id, client_id, first_name, last_name, is_primary) "
            "VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 'X', 'Y', true)", tenant.org_id, c.id)
    assert first.is_primary
    await invalid(stubs.clients.CreateContact(pb.CreateContactRequest(contact=client_pb2.Contact(
        first_name="No", last_name="Client", is_primary=True)), metadata=tenant.md), "contact.is_primary")
    err = await fails(stubs.clients.DeleteClient(pb.DeleteClientRequest(id=c.id), metadata=tenant.md),
                      grpc.StatusCode.FAILED_PRECONDITION)
    assert error_reason(err) == "CLIENT_HAS_CONTACTS"


async def test_contact_search_soft_delete_and_merge(stubs, tenant, admin_db):
    c = await _create(stubs, tenant)
    mk = stubs.clients.CreateContact
    a = (await mk(pb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=c.id, first_name="Maria", last_name="Garcia", email="maria@acme.example", tags=["tax"])),
        metadata=tenant.md)).contact
    b = (await mk(pb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=c.id, first_name="Maria", last_name="Garcia", phone="+1 217 555 0100", job_title="CFO",
        tags=["payroll"], is_primary=True, notes="prefers phone")), metadata=tenant.md)).contact
    found = (await stubs.clients.ListContacts(pb.ListContactsRequest(client_id=c.id, query="garcia"),
                                              metadata=tenant.md)).contacts
    assert {x.id for x in found} == {a.id, b.id}
    merged = (await stubs.clients.MergeContacts(pb.MergeContactsRequest(survivor_id=a.id, duplicate_id=b.id),
                                                metadata=tenant.md)).contact
    assert merged.phone == "+12175550100" and merged.job_title == "CFO" and merged.is_primary
    assert set(merged.tags) == {"tax", "payroll"} and merged.email == "maria@acme.example"
    tagged = (await stubs.clients.ListContacts(pb.ListContactsRequest(tag="payroll"), metadata=tenant.md)).contacts
    assert [x.id for x in tagged] == [a.id]  # the duplicate is gone, its tag lives on in the survivor
    await fails(stubs.clients.GetContact(pb.GetContactRequest(id=b.id), metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    row = await admin_db.fetchrow("SELECT merged_into, deleted_at FROM crm.contacts WHERE id = $1::uuid", b.id)
    assert str(row["merged_into"]) == a.id and row["deleted_at"] is not None
    ev = await admin_db.fetchrow("SELECT body FROM crm.outbox WHERE routing_key = 'crm.contact.merged' "
                                 "AND aggregate_id = $1", a.id)
    assert ev is not None
    await invalid(stubs.clients.MergeContacts(pb.MergeContactsRequest(survivor_id=a.id, duplicate_id=a.id),
                                              metadata=tenant.md), "duplicate_id")
    await stubs.clients.DeleteContact(pb.DeleteContactRequest(id=a.id), metadata=tenant.md)
    assert not (await stubs.clients.ListContacts(pb.ListContactsRequest(client_id=c.id),
                                                 metadata=tenant.md)).contacts
    await stubs.clients.DeleteClient(pb.DeleteClientRequest(id=c.id), metadata=tenant.md)
    # its number is free again
    await _create(stubs, tenant, client_number=c.client_number)


async def test_other_tenant_sees_no_client_or_contact(stubs, tenant, other_tenant):
    c = await _create(stubs, tenant)
    ct = (await stubs.clients.CreateContact(pb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=c.id, first_name="Eve", last_name="Ok")), metadata=tenant.md)).contact
    md = other_tenant.md
    cl = EveryRpc(stubs.clients, pb, "ClientService")
    mask = field_mask_pb2.FieldMask(paths=["name"])
    for call in (
        cl.GetClient(pb.GetClientRequest(id=c.id), metadata=md),
        cl.UpdateClient(pb.UpdateClientRequest(client=client_pb2.Client(id=c.id, name="X"), update_mask=mask),
                        metadata=md),
        cl.DeleteClient(pb.DeleteClientRequest(id=c.id), metadata=md),
        cl.GetContact(pb.GetContactRequest(id=ct.id), metadata=md),
        cl.UpdateContact(pb.UpdateContactRequest(contact=client_pb2.Contact(id=ct.id, first_name="X"),
                                                 update_mask=field_mask_pb2.FieldMask(paths=["first_name"])),
                         metadata=md),
        cl.DeleteContact(pb.DeleteContactRequest(id=ct.id), metadata=md),
        cl.MergeContacts(pb.MergeContactsRequest(survivor_id=ct.id, duplicate_id=str(uuid.uuid4())), metadata=md),
    ):
        await fails(call, grpc.StatusCode.NOT_FOUND)
    await invalid(cl.CreateContact(pb.CreateContactRequest(contact=client_pb2.Contact(
        client_id=c.id, first_name="A", last_name="B")), metadata=md), "contact.client_id")
    assert not (await cl.ListClients(pb.ListClientsRequest(), metadata=md)).clients
    assert not (await cl.ListContacts(pb.ListContactsRequest(), metadata=md)).contacts
    assert not (await cl.ListContacts(pb.ListContactsRequest(client_id=c.id), metadata=md)).contacts
    # its own client may take the same number: a client of its own, not the first tenant's
    mine = (await cl.CreateClient(pb.CreateClientRequest(client=_client(client_number=c.client_number)),
                                  metadata=md)).client
    assert mine.id != c.id
    assert [x.id for x in (await cl.ListClients(pb.ListClientsRequest(), metadata=md)).clients] == [mine.id]
    assert not cl.uncalled()  # every ClientService RPC, as the other tenant
    _ = crm_events_pb2
