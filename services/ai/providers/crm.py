"""crm over gRPC: a donor's facts (record, gifts, open todos), read with the metadata given: the
CALLER's token and tenant for a request, so ai never sees more than whoever asked, or ai's own
tenant token for a job with no caller (chassis.tenant_tokens); crm's permissions and RLS apply
unchanged either way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from givance.crm.v1 import (
    donation_pb2,
    donation_service_pb2,
    donation_service_pb2_grpc,
    donor_pb2,
    donor_service_pb2,
    donor_service_pb2_grpc,
    todo_pb2,
    todo_service_pb2,
    todo_service_pb2_grpc,
)
from google.protobuf import field_mask_pb2
from google.type import decimal_pb2

from chassis.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable
from services.ai.domain.facts import DonorFacts, Gift

Metadata = Sequence[tuple[str, str]]


def _money(m) -> str:
    cents = m.units * 100 + round(m.nanos / 10_000_000)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class CrmReader:
    def __init__(self, address: str, *, timeout: float = 10.0):
        self.address = address
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _stubs(self):
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address)
        return (donor_service_pb2_grpc.DonorServiceStub(self._channel),
                donation_service_pb2_grpc.DonationServiceStub(self._channel),
                todo_service_pb2_grpc.TodoServiceStub(self._channel))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def donor_facts(self, metadata: Metadata, donor_id: str, *, gifts: int = 10) -> DonorFacts:
        """The donor, their latest gifts and open todos: three calls to crm at once."""
        donors, donations, todos = self._stubs()
        got, page, open_todos = await asyncio.gather(
            donors.GetDonor(donor_service_pb2.GetDonorRequest(id=donor_id), metadata=metadata, timeout=self.timeout),
            donations.ListDonations(donation_service_pb2.ListDonationsRequest(donor_id=donor_id, page_size=gifts),
                                    metadata=metadata, timeout=self.timeout),
            todos.ListTodos(todo_service_pb2.ListTodosRequest(donor_id=donor_id, status=todo_pb2.TODO_STATUS_PENDING,
                                                              page_size=20), metadata=metadata, timeout=self.timeout),
            return_exceptions=True)
        if isinstance(got, BaseException):
            raise _translate(got, donor_id) if isinstance(got, grpc.aio.AioRpcError) else got
        d = got.donor
        facts = DonorFacts(donor_id=d.id, first_name=d.first_name, last_name=d.last_name,
                           city=d.address.city, journey_stage=d.journey_stage, classification=d.ai_classification,
                           notes=d.notes[:2000], tags=list(d.tags)[:20],
                           lifetime={t.lifetime_amount.currency_code: _money(t.lifetime_amount)
                                     for t in d.giving_totals if t.HasField("lifetime_amount")})
        # A caller who may not see gifts or todos (PERMISSION_DENIED) gets a writer that sees none.
        if _denied(page, donor_id):
            facts.withheld.append("gifts")
        else:
            facts.gifts = [Gift(id=g.id, amount=_money(g.amount), currency=g.amount.currency_code,
                                date=f"{g.date.year:04d}-{g.date.month:02d}-{g.date.day:02d}")
                           for g in page.donations
                           if g.status != donation_pb2.DONATION_STATUS_REFUNDED]
            facts.gifts.sort(key=lambda g: g.date, reverse=True)
        if _denied(open_todos, donor_id):
            facts.withheld.append("open_todos")
        else:
            facts.open_todos = [{"id": t.id, "title": t.title} for t in open_todos.todos]
        return facts

    async def set_classification(self, metadata: Metadata, donor_id: str, label: str) -> None:
        """crm's donors.ai_classification, through crm's own UpdateDonor (the caller's rights)."""
        donors, _, _ = self._stubs()
        try:
            await donors.UpdateDonor(donor_service_pb2.UpdateDonorRequest(
                donor=donor_pb2.Donor(id=donor_id, ai_classification=label),
                update_mask=field_mask_pb2.FieldMask(paths=["ai_classification"])), metadata=metadata,
                timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, donor_id) from None

    async def open_ai_todos(self, metadata: Metadata, donor_id: str) -> list[dict[str, str]]:
        """The donor's AI-suggested todos still open (pending or in progress)."""
        _, _, todos = self._stubs()
        out: list[dict[str, str]] = []
        for status in (todo_pb2.TODO_STATUS_PENDING, todo_pb2.TODO_STATUS_IN_PROGRESS):
            try:
                page = await todos.ListTodos(todo_service_pb2.ListTodosRequest(
                    donor_id=donor_id, status=status, page_size=200), metadata=metadata, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                raise _translate(exc, donor_id) from None
            out += [{"id": t.id, "title": t.title} for t in page.todos if t.is_ai_generated]
        return out

    async def suggest_todo(self, metadata: Metadata, donor_id: str, title: str, reasoning: str, confidence: str,
                           request_id: str) -> str:
        """An AI-generated todo in crm (is_ai_generated, ai_reasoning, ai_confidence); its id."""
        _, _, todos = self._stubs()
        try:
            resp = await todos.CreateTodo(todo_service_pb2.CreateTodoRequest(todo=todo_pb2.Todo(
                title=title, donor_id=donor_id, is_ai_generated=True, ai_reasoning=reasoning,
                ai_confidence=decimal_pb2.Decimal(value=confidence)), request_id=request_id), metadata=metadata,
                timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, donor_id) from None
        return resp.todo.id


    async def donor_ids(self, metadata: Metadata, page_token: str, page_size: int) -> tuple[list[str], str]:
        """A page of the organization's donors' ids, oldest first (new donors come last, so a
        cursor taken now still finds them), and the next page's token ("" at the end)."""
        donors, _, _ = self._stubs()
        try:
            resp = await donors.ListDonors(donor_service_pb2.ListDonorsRequest(
                page_size=page_size, page_token=page_token, order_by="create_time"), metadata=metadata,
                timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "") from None
        return [d.id for d in resp.donors], resp.next_page_token

    async def search_donors(self, metadata: Metadata, query: str, limit: int = 10) -> list[dict[str, str]]:
        donors, _, _ = self._stubs()
        try:
            resp = await donors.SearchDonors(donor_service_pb2.SearchDonorsRequest(query=query, page_size=limit),
                                             metadata=metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument.field("search_donors.query", exc.details() or "is not a valid query") from None
            raise _translate(exc, "") from None
        return [{"id": r.donor.id, "name": f"{r.donor.first_name} {r.donor.last_name}".strip(),
                 "city": r.donor.address.city} for r in resp.results]

    async def create_todo(self, metadata: Metadata, donor_id: str, title: str, reasoning: str,
                          request_id: str) -> str:
        """A todo the user confirmed (an agent proposed it: AI-generated, with why)."""
        return await self.suggest_todo(metadata, donor_id, title, reasoning, "1.00", request_id)


def _denied(result, donor_id: str) -> bool:
    """True when crm refused the caller this part; any other failure is raised."""
    if isinstance(result, grpc.aio.AioRpcError):
        if result.code() == grpc.StatusCode.PERMISSION_DENIED:
            return True
        raise _translate(result, donor_id)
    if isinstance(result, BaseException):
        raise result
    return False


def _translate(exc: grpc.aio.AioRpcError, donor_id: str) -> Exception:
    code = exc.code()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"donor {donor_id} not found")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument.field("donor_id", "is not a valid id")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"crm refused: {exc.details()}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(f"crm refused the token: {exc.details()}")
    return Unavailable(f"crm could not be reached ({code.name})")
