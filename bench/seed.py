"""The data the benchmarks run on: one organization (through identity's SignUp, so its
access token is real) and its donors (through crm's CreateDonor), plus the serialized
requests the load client sends."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import grpc
from givance.crm.v1 import donation_pb2, donation_service_pb2, donor_pb2, donor_service_pb2, donor_service_pb2_grpc
from givance.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from google.type import date_pb2, money_pb2

GET_DONOR = "/givance.crm.v1.DonorService/GetDonor"
RECORD_DONATION = "/givance.crm.v1.DonationService/RecordDonation"


@dataclass
class Tenant:
    org_id: str
    access_token: str
    donor_ids: list[str]

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.access_token}"), ("x-tenant-id", self.org_id)]


async def sign_up(identity_address: str) -> tuple[str, str]:
    """A new organization and its owner; returns (organization id, access token)."""
    async with grpc.aio.insecure_channel(identity_address) as channel:
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        resp = await stub.SignUp(identity_service_pb2.SignUpRequest(
            email=f"bench-{uuid.uuid4().hex[:10]}@example.org", password="correct horse battery staple",
            first_name="Bench", last_name="Mark", organization_name="Bench Fund"))
    return resp.organization.id, resp.tokens.access_token


async def create_donors(crm_address: str, org_id: str, token: str, count: int) -> list[str]:
    metadata = (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = donor_service_pb2_grpc.DonorServiceStub(channel)

        async def one(n: int) -> str:
            donor = donor_pb2.Donor(first_name="Donor", last_name=f"Number {n}", email=f"donor{n}@example.org")
            resp = await stub.CreateDonor(donor_service_pb2.CreateDonorRequest(donor=donor), metadata=metadata)
            return resp.donor.id

        ids: list[str] = []
        for start in range(0, count, 50):  # 50 at a time: quick, without a storm of connections
            ids += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 50))))
    return ids


async def seed(identity_address: str, crm_address: str, donors: int) -> Tenant:
    org_id, token = await sign_up(identity_address)
    return Tenant(org_id, token, await create_donors(crm_address, org_id, token, donors))


def get_donor_requests(tenant: Tenant) -> list[bytes]:
    return [donor_service_pb2.GetDonorRequest(id=d).SerializeToString() for d in tenant.donor_ids]


def record_donation_requests(tenant: Tenant) -> list[bytes]:
    """One gift per donor, so that consecutive calls update different donors' totals."""
    return [
        donation_service_pb2.RecordDonationRequest(donation=donation_pb2.Donation(
            donor_id=d, amount=money_pb2.Money(currency_code="USD", units=25),
            date=date_pb2.Date(year=2026, month=3, day=1), payment_method=donation_pb2.PAYMENT_METHOD_CHECK,
        )).SerializeToString()
        for d in tenant.donor_ids
    ]
