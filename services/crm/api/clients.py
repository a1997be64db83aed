"""ClientService: proto in, handler call, proto out (clients and their contacts)."""

from __future__ import annotations

from typing import Any

from givance.crm.v1 import client_pb2, client_service_pb2_grpc, donor_pb2
from givance.crm.v1 import client_service_pb2 as pb
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from chassis import context
from chassis.convert import from_money, money, timestamp
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.crm.handlers import clients as handlers

_TYPE_IN = {client_pb2.CLIENT_TYPE_UNSPECIFIED: None, client_pb2.CLIENT_TYPE_INDIVIDUAL: "individual",
            client_pb2.CLIENT_TYPE_BUSINESS: "business", client_pb2.CLIENT_TYPE_NONPROFIT: "nonprofit"}
_TYPE_OUT = {v: k for k, v in _TYPE_IN.items() if v}
_STATUS_IN = {client_pb2.CLIENT_STATUS_UNSPECIFIED: None, client_pb2.CLIENT_STATUS_ACTIVE: "active",
              client_pb2.CLIENT_STATUS_INACTIVE: "inactive", client_pb2.CLIENT_STATUS_PROSPECT: "prospect"}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items() if v}
_TERMS_IN = {client_pb2.PAYMENT_TERMS_UNSPECIFIED: None, client_pb2.PAYMENT_TERMS_DUE_ON_RECEIPT: "due_on_receipt",
             client_pb2.PAYMENT_TERMS_NET_15: "net_15", client_pb2.PAYMENT_TERMS_NET_30: "net_30",
             client_pb2.PAYMENT_TERMS_NET_45: "net_45", client_pb2.PAYMENT_TERMS_NET_60: "net_60",
             client_pb2.PAYMENT_TERMS_NET_90: "net_90"}
_TERMS_OUT = {v: k for k, v in _TERMS_IN.items() if v}


def _address_in(a: donor_pb2.Address) -> dict[str, str]:
    return {"street": a.street, "city": a.city, "state": a.state, "postal_code": a.postal_code,
            "country": a.country}


def _address_out(a: dict | None) -> donor_pb2.Address | None:
    if not a:
        return None
    return donor_pb2.Address(**{k: a.get(k, "") for k in ("street", "city", "state", "postal_code", "country")})


def _struct(value: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value or {})
    return s


def _enum(value: int, table: dict, path: str, problems: dict[str, str]) -> Any:
    if value not in table:
        problems[path] = f"unknown value {value}"
        return None
    return table[value]


def client_in(c: client_pb2.Client) -> dict[str, Any]:
    problems: dict[str, str] = {}
    raw: dict[str, Any] = {
        "name": c.name, "company_name": c.company_name, "industry": c.industry, "client_number": c.client_number,
        "email": c.email, "phone": c.phone, "website": c.website, "address": _address_in(c.address),
        "tax_id": c.tax_id, "registration_number": c.registration_number,
        "fiscal_year_end_month": c.fiscal_year_end_month, "acquisition_source": c.acquisition_source,
        "referral_source": c.referral_source, "assigned_manager_id": c.assigned_manager_id,
        "communication_preferences": MessageToDict(c.communication_preferences),
        "service_preferences": MessageToDict(c.service_preferences),
        "billing_address": _address_in(c.billing_address) if c.HasField("billing_address") else None,
        "client_type": _enum(c.client_type, _TYPE_IN, "client.client_type", problems),
        "status": _enum(c.status, _STATUS_IN, "client.status", problems),
        "payment_terms": _enum(c.payment_terms, _TERMS_IN, "client.payment_terms", problems),
        "credit_limit": None,
    }
    if c.HasField("credit_limit"):
        try:
            raw["credit_limit"] = (from_money(c.credit_limit), c.credit_limit.currency_code)
        except ValueError as exc:
            problems["client.credit_limit"] = str(exc)
    raw["problems"] = problems
    return raw


def client_out(r: dict[str, Any]) -> client_pb2.Client:
    return client_pb2.Client(
        id=str(r["id"]), organization_id=str(r["organization_id"]), name=r["name"],
        company_name=r["company_name"] or "", client_type=_TYPE_OUT[r["client_type"]], industry=r["industry"] or "",
        client_number=r["client_number"] or "", email=r["email"] or "", phone=r["phone"] or "",
        website=r["website"] or "", address=_address_out(r["address"]), tax_id=handlers.masked_tax_id(r),
        registration_number=r["registration_number"] or "", fiscal_year_end_month=r["fiscal_year_end_month"] or 0,
        status=_STATUS_OUT[r["status"]], acquisition_source=r["acquisition_source"] or "",
        referral_source=r["referral_source"] or "", assigned_manager_id=str(r["assigned_manager"] or ""),
        communication_preferences=_struct(r["communication_preferences"]),
        service_preferences=_struct(r["service_preferences"]), billing_address=_address_out(r["billing_address"]),
        payment_terms=_TERMS_OUT[r["payment_terms"]],
        credit_limit=money(r["credit_limit"], r["credit_limit_currency"]) if r["credit_limit"] is not None else None,
        creator_id=str(r["created_by"] or ""), create_time=timestamp(r["created_at"]),
        update_time=timestamp(r["updated_at"]), etag=etag(r["version"]))


def contact_in(c: client_pb2.Contact) -> dict[str, Any]:
    return {"client_id": c.client_id, "first_name": c.first_name, "last_name": c.last_name,
            "job_title": c.job_title, "department": c.department, "email": c.email, "phone": c.phone,
            "mobile": c.mobile, "is_primary": c.is_primary, "can_authorize": c.can_authorize,
            "receives_communications": c.receives_communications, "notes": c.notes, "tags": list(c.tags)}


def contact_out(r: dict[str, Any]) -> client_pb2.Contact:
    return client_pb2.Contact(
        id=str(r["id"]), organization_id=str(r["organization_id"]), client_id=str(r["client_id"] or ""),
        first_name=r["first_name"], last_name=r["last_name"], job_title=r["job_title"] or "",
        department=r["department"] or "", email=r["email"] or "", phone=r["phone"] or "", mobile=r["mobile"] or "",
        is_primary=r["is_primary"], can_authorize=r["can_authorize"],
        receives_communications=r["receives_communications"], notes=r["notes"] or "", tags=list(r["tags"] or []),
        creator_id=str(r["created_by"] or ""), create_time=timestamp(r["created_at"]),
        update_time=timestamp(r["updated_at"]), etag=etag(r["version"]))


def _org():
    return context.current().tenant_id


class ClientServicer(client_service_pb2_grpc.ClientServiceServicer):
    def __init__(self, db: Database, keyring: Keyring):
        self.db, self.keyring = db, keyring

    async def CreateClient(self, request: pb.CreateClientRequest, ctx) -> pb.CreateClientResponse:
        row = await handlers.create_client(self.db, self.keyring, _org(), client_in(request.client),
                                           request.request_id)
        return pb.CreateClientResponse(client=client_out(row))

    async def GetClient(self, request: pb.GetClientRequest, ctx) -> pb.GetClientResponse:
        return pb.GetClientResponse(client=client_out(await handlers.get_client(self.db, _org(), request.id)))

    async def ListClients(self, request: pb.ListClientsRequest, ctx) -> pb.ListClientsResponse:
        problems: dict[str, str] = {}
        status = _enum(request.status, _STATUS_IN, "status", problems)
        ctype = _enum(request.client_type, _TYPE_IN, "client_type", problems)
        if problems:
            raise InvalidArgument(problems.items())
        rows, token = await handlers.list_clients(
            self.db, _org(), status=status, client_type=ctype, manager=request.assigned_manager_id,
            query=request.query, page_size=request.page_size, page_token=request.page_token)
        return pb.ListClientsResponse(clients=[client_out(r) for r in rows], next_page_token=token)

    async def UpdateClient(self, request: pb.UpdateClientRequest, ctx) -> pb.UpdateClientResponse:
        row = await handlers.update_client(self.db, self.keyring, _org(), request.client.id, request.client.etag,
                                           client_in(request.client), list(request.update_mask.paths))
        return pb.UpdateClientResponse(client=client_out(row))

    async def DeleteClient(self, request: pb.DeleteClientRequest, ctx) -> pb.DeleteClientResponse:
        await handlers.delete_client(self.db, _org(), request.id, request.etag)
        return pb.DeleteClientResponse()

    async def CreateContact(self, request: pb.CreateContactRequest, ctx) -> pb.CreateContactResponse:
        row = await handlers.create_contact(self.db, _org(), contact_in(request.contact), request.request_id)
        return pb.CreateContactResponse(contact=contact_out(row))

    async def GetContact(self, request: pb.GetContactRequest, ctx) -> pb.GetContactResponse:
        return pb.GetContactResponse(contact=contact_out(await handlers.get_contact(self.db, _org(), request.id)))

    async def ListContacts(self, request: pb.ListContactsRequest, ctx) -> pb.ListContactsResponse:
        rows, token = await handlers.list_contacts(self.db, _org(), client_id=request.client_id, query=request.query,
                                                   tag=request.tag, page_size=request.page_size,
                                                   page_token=request.page_token)
        return pb.ListContactsResponse(contacts=[contact_out(r) for r in rows], next_page_token=token)

    async def UpdateContact(self, request: pb.UpdateContactRequest, ctx) -> pb.UpdateContactResponse:
        row = await handlers.update_contact(self.db, _org(), request.contact.id, request.contact.etag,
                                            contact_in(request.contact), list(request.update_mask.paths))
        return pb.UpdateContactResponse(contact=contact_out(row))

    async def DeleteContact(self, request: pb.DeleteContactRequest, ctx) -> pb.DeleteContactResponse:
        await handlers.delete_contact(self.db, _org(), request.id, request.etag)
        return pb.DeleteContactResponse()

    async def MergeContacts(self, request: pb.MergeContactsRequest, ctx) -> pb.MergeContactsResponse:
        row = await handlers.merge_contacts(self.db, _org(), request.survivor_id, request.duplicate_id)
        return pb.MergeContactsResponse(contact=contact_out(row))
