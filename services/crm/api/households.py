"""HouseholdService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.crm.v1 import household_pb2, household_service_pb2_grpc
from givance.crm.v1 import household_service_pb2 as pb

from chassis import context
from chassis.convert import money, timestamp
from chassis.db import Database
from chassis.resource import etag
from services.crm.handlers import households as handlers
from services.crm.handlers.households import Household, Membership


def household_to_proto(h: Household | None) -> household_pb2.Household | None:
    if h is None:
        return None
    name, derived, formal, informal = handlers.view(h)
    members = sorted(h.members, key=lambda m: m.donor_id != h.primary_donor_id)
    return household_pb2.Household(
        id=str(h.id), name=name, name_derived=derived, formal_salutation=formal, informal_salutation=informal,
        primary_donor_id=str(h.primary_donor_id or ""),
        members=[household_pb2.HouseholdMember(donor_id=str(m.donor_id), first_name=m.first_name,
                                               last_name=m.last_name, join_time=timestamp(m.joined_at))
                 for m in members],
        giving_totals=[household_pb2.HouseholdGivingTotal(
            hard_amount=money(g.hard, g.currency), soft_amount=money(g.soft, g.currency),
            combined_amount=money(g.hard + g.soft, g.currency)) for g in h.giving],
        create_time=timestamp(h.created_at), update_time=timestamp(h.updated_at), etag=etag(h.version))


def membership_to_proto(m: Membership) -> household_pb2.HouseholdMembership:
    return household_pb2.HouseholdMembership(
        household_id=str(m.household_id), donor_id=str(m.donor_id), join_time=timestamp(m.joined_at),
        leave_time=timestamp(m.left_at), leave_reason=m.leave_reason or "")


class HouseholdServicer(household_service_pb2_grpc.HouseholdServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateHousehold(self, request: pb.CreateHouseholdRequest, ctx) -> pb.CreateHouseholdResponse:
        row = await handlers.create_household(self.db, context.current().tenant_id, request.household.name,
                                              request.household.primary_donor_id, list(request.donor_ids),
                                              request.request_id)
        return pb.CreateHouseholdResponse(household=household_to_proto(row))

    async def GetHousehold(self, request: pb.GetHouseholdRequest, ctx) -> pb.GetHouseholdResponse:
        row = await handlers.get_household(self.db, context.current().tenant_id, request.id)
        return pb.GetHouseholdResponse(household=household_to_proto(row))

    async def ListHouseholds(self, request: pb.ListHouseholdsRequest, ctx) -> pb.ListHouseholdsResponse:
        rows, token = await handlers.list_households(self.db, context.current().tenant_id, request.page_size,
                                                     request.page_token)
        return pb.ListHouseholdsResponse(households=[household_to_proto(r) for r in rows], next_page_token=token)

    async def UpdateHousehold(self, request: pb.UpdateHouseholdRequest, ctx) -> pb.UpdateHouseholdResponse:
        h = request.household
        row = await handlers.update_household(self.db, context.current().tenant_id, h.id, h.etag, h.name,
                                              h.primary_donor_id, list(request.update_mask.paths))
        return pb.UpdateHouseholdResponse(household=household_to_proto(row))

    async def MoveDonorToHousehold(self, request: pb.MoveDonorToHouseholdRequest,
                                   ctx) -> pb.MoveDonorToHouseholdResponse:
        now, before = await handlers.move_donor(self.db, context.current().tenant_id, request.donor_id,
                                                request.household_id)
        return pb.MoveDonorToHouseholdResponse(household=household_to_proto(now),
                                               previous_household=household_to_proto(before))

    async def ListHouseholdMemberships(self, request: pb.ListHouseholdMembershipsRequest,
                                       ctx) -> pb.ListHouseholdMembershipsResponse:
        rows, token = await handlers.list_memberships(self.db, context.current().tenant_id, request.household_id,
                                                      request.donor_id, request.page_size, request.page_token)
        return pb.ListHouseholdMembershipsResponse(memberships=[membership_to_proto(m) for m in rows],
                                                   next_page_token=token)
