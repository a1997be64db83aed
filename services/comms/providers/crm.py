"""crm over gRPC: a donor's contact fields, a year's receipt figures, the receipt flags.

Every call forwards the caller's token and tenant (the caller's rights), or, for a consumer
with no caller, comms' own tenant token of the event's organization (anything with `metadata`): a donor of
another organization is NOT_FOUND here as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from givance.crm.v1 import (
    donation_service_pb2,
    donation_service_pb2_grpc,
    donor_list_service_pb2,
    donor_list_service_pb2_grpc,
    donor_service_pb2,
    donor_service_pb2_grpc,
)

from chassis.errors import NotFound, Unavailable


@dataclass
class DonorContact:
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    salutation: str

    def as_variables(self) -> dict[str, str]:
        return {"id": self.id, "first_name": self.first_name, "last_name": self.last_name, "email": self.email,
                "display_name": f"{self.first_name} {self.last_name}".strip(), "salutation": self.salutation}


@dataclass
class ReceiptTotal:
    currency: str
    total: str  # "1234.50"
    gift_count: int
    gifts: list[tuple[str, str, str, str]] = field(default_factory=list)  # (donation id, date, amount, reference)


@dataclass
class Caller:
    token: str
    tenant_id: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"), ("x-tenant-id", self.tenant_id))


def _money(m) -> str:
    from decimal import Decimal

    return str((Decimal(m.units) + Decimal(m.nanos) / Decimal(10**9)).quantize(Decimal("0.01")))


class CrmClient:
    def __init__(self, address: str, timeout: float = 5.0):
        self.address, self.timeout = address, timeout
        self._channel: grpc.aio.Channel | None = None

    def _stubs(self):
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address)
        return (donor_service_pb2_grpc.DonorServiceStub(self._channel),
                donation_service_pb2_grpc.DonationServiceStub(self._channel))

    async def _call(self, rpc, request, caller: Caller, what: str):
        try:
            return await rpc(request, metadata=caller.metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.PERMISSION_DENIED):
                raise NotFound(f"{what} not found") from None
            raise Unavailable(f"crm did not answer ({exc.code().name})") from None

    async def donor(self, caller: Caller, donor_id: str) -> DonorContact:
        donors, _ = self._stubs()
        d = (await self._call(donors.GetDonor, donor_service_pb2.GetDonorRequest(id=donor_id), caller,
                              f"donor {donor_id}")).donor
        return DonorContact(d.id, d.first_name, d.last_name, d.email, d.phone, d.formal_salutation)

    async def receipt_summary(self, caller: Caller, donor_id: str, year: int) -> list[ReceiptTotal]:
        _, donations = self._stubs()
        resp = await self._call(donations.GetReceiptSummary,
                                donation_service_pb2.GetReceiptSummaryRequest(donor_id=donor_id, year=year), caller,
                                f"donor {donor_id}")
        out = []
        for t in resp.totals:
            out.append(ReceiptTotal(t.total.currency_code, _money(t.total), t.gift_count, [
                (g.donation_id, f"{g.date.year:04d}-{g.date.month:02d}-{g.date.day:02d}", _money(g.amount),
                 g.reference_number) for g in t.gifts]))
        return out

    async def mark_receipts_sent(self, caller: Caller, donation_ids: list[str]) -> None:
        _, donations = self._stubs()
        for i in range(0, len(donation_ids), 1000):
            await self._call(donations.MarkReceiptsSent,
                             donation_service_pb2.MarkReceiptsSentRequest(donation_ids=donation_ids[i:i + 1000]),
                             caller, "donations")

    async def list_members(self, caller: Caller, list_id: str, limit: int) -> list[str]:
        """The donor ids of a crm donor list (at most `limit` + 1: one more says it is too long)."""
        if self._channel is None:
            self._stubs()
        lists = donor_list_service_pb2_grpc.DonorListServiceStub(self._channel)
        ids: list[str] = []
        token = ""
        while len(ids) <= limit:
            page = await self._call(lists.ListDonorListMembers, donor_list_service_pb2.ListDonorListMembersRequest(
                list_id=list_id, page_size=1000, page_token=token), caller, f"donor list {list_id}")
            ids += [d.id for d in page.donors]
            token = page.next_page_token
            if not token:
                break
        return ids[:limit + 1]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
