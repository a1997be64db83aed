"""PledgeService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import pledge_pb2, pledge_service_pb2_grpc
from givance.crm.v1 import pledge_service_pb2 as pb

from chassis import context
from chassis.convert import date as date_pb
from chassis.convert import date_field, money, money_field, timestamp
from chassis.db import Database
from chassis.errors import InvalidArgument, Violations
from chassis.resource import etag
from services.crm.handlers import pledges as handlers
from services.crm.handlers.pledges import PledgeFields, View

_FREQ_IN = {pledge_pb2.PLEDGE_FREQUENCY_UNSPECIFIED: None, pledge_pb2.PLEDGE_FREQUENCY_ONCE: "once",
            pledge_pb2.PLEDGE_FREQUENCY_WEEKLY: "weekly", pledge_pb2.PLEDGE_FREQUENCY_MONTHLY: "monthly",
            pledge_pb2.PLEDGE_FREQUENCY_QUARTERLY: "quarterly",
            pledge_pb2.PLEDGE_FREQUENCY_SEMIANNUALLY: "semiannually",
            pledge_pb2.PLEDGE_FREQUENCY_ANNUALLY: "annually"}
_FREQ_OUT = {v: k for k, v in _FREQ_IN.items()}
_STATUS_IN = {pledge_pb2.PLEDGE_STATUS_OPEN: "open", pledge_pb2.PLEDGE_STATUS_FULFILLED: "fulfilled",
              pledge_pb2.PLEDGE_STATUS_WRITTEN_OFF: "written_off"}
_STATUS_OUT = {v: k for k, v in _STATUS_IN.items()}


def pledge_to_proto(view: View) -> pledge_pb2.Pledge:
    p, cur = view.pledge, view.pledge.currency
    out = pledge_pb2.Pledge(
        id=str(p.id), donor_id=str(p.donor_id), project_id=str(p.project_id or ""), amount=money(p.amount, cur),
        start_date=date_pb(p.start_date), frequency=_FREQ_OUT[p.frequency], installment_count=p.installment_count,
        notes=p.notes or "", received_amount=money(p.received_amount, cur), payment_count=p.payment_count,
        balance=money(view.balance, cur), status=_STATUS_OUT[p.status], write_off_reason=p.write_off_reason or "",
        write_off_time=timestamp(p.written_off_at), create_time=timestamp(p.created_at),
        update_time=timestamp(p.updated_at), etag=etag(p.version),
        installments=[pledge_pb2.PledgeInstallment(
            number=i.number, due_date=date_pb(i.due_date), amount=money(i.amount, cur),
            paid_amount=money(i.paid, cur), overdue=i.overdue) for i in view.installments])
    if p.written_off_amount is not None:
        out.written_off_amount.CopyFrom(money(p.written_off_amount, cur))
    return out


class PledgeServicer(pledge_service_pb2_grpc.PledgeServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreatePledge(self, request: pb.CreatePledgeRequest, ctx) -> pb.CreatePledgeResponse:
        p = request.pledge
        v = Violations()
        amount = money_field(p, "amount", v, path="pledge.amount")
        start = date_field(p, "start_date", v, path="pledge.start_date")
        if p.frequency not in _FREQ_IN:
            v.add("pledge.frequency", f"unknown frequency {p.frequency}")
        v.raise_if_any()
        fields = PledgeFields(donor_id=p.donor_id, project_id=p.project_id or None, amount=amount,
                              currency=p.amount.currency_code, start_date=start, frequency=_FREQ_IN[p.frequency],
                              installment_count=p.installment_count, notes=p.notes or None)
        view = await handlers.create_pledge(self.db, context.current().tenant_id, fields, request.request_id)
        return pb.CreatePledgeResponse(pledge=pledge_to_proto(view))

    async def GetPledge(self, request: pb.GetPledgeRequest, ctx) -> pb.GetPledgeResponse:
        view = await handlers.get_pledge(self.db, context.current().tenant_id, request.id)
        return pb.GetPledgeResponse(pledge=pledge_to_proto(view))

    async def ListPledges(self, request: pb.ListPledgesRequest, ctx) -> pb.ListPledgesResponse:
        status = _STATUS_IN.get(request.status)
        if request.status and status is None:
            raise InvalidArgument.field("status", f"unknown status {request.status}")
        rows, token = await handlers.list_pledges(self.db, context.current().tenant_id, request.donor_id, status,
                                                  request.page_size, request.page_token)
        return pb.ListPledgesResponse(pledges=[pledge_to_proto(r) for r in rows], next_page_token=token)

    async def WriteOffPledge(self, request: pb.WriteOffPledgeRequest, ctx) -> pb.WriteOffPledgeResponse:
        view = await handlers.write_off(self.db, context.current().tenant_id, request.id, request.etag, request.reason)
        return pb.WriteOffPledgeResponse(pledge=pledge_to_proto(view))
