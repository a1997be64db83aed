"""Tenant isolation over every ai RPC: another tenant's donors and research are NOT_FOUND, its
settings and memory are never seen; a test fails if an RPC is added without a case here."""

from __future__ import annotations

import grpc
from givance.ai.v1 import (
    agent_service_pb2,
    classification_service_pb2,
    generation_service_pb2,
    research_pb2,
    research_service_pb2,
    settings_pb2,
    settings_service_pb2,
    whatsapp_service_pb2,
)
from givance.ai.v1 import classification_service_pb2 as cls_pb
from givance.ai.v1 import generation_service_pb2 as gen_pb
from givance.ai.v1 import research_service_pb2 as res_pb
from givance.ai.v1 import settings_service_pb2 as set_pb
from google.protobuf import field_mask_pb2

from tests.helpers import eventually, fails, new_donor

COVERED = {"GetAiSettings", "UpdateAiSettings", "CrawlOrganizationWebsite", "GetPersonalMemory",
           "UpdatePersonalMemory", "ResearchDonor", "GetDonorResearch", "ListDonorResearch", "GenerateDonorEmail",
           "ClassifyDonor",
           # tests/ai/test_classification_runs.py (test_every_donor_is_classified_without_duplicating_...)
           "StartClassificationRun", "GetClassificationRun",
           # tests/ai/test_whatsapp_assistant.py (test_the_allowlist_is_an_admins_and_each_organizations_own,
           # test_staff_never_see_another_organizations_donors)
           "AddWhatsAppAllowlistEntry", "ListWhatsAppAllowlistEntries", "RemoveWhatsAppAllowlistEntry",
           "ListWhatsAppQueries",
           # AgentService: tests/ai/test_agents.py (test_sessions_are_their_users_own_and_need_access)
           "ListAgents", "CreateAgent", "InstallAgent", "ListOrganizationAgents", "GrantAgentAccess",
           "CreateAgentSession", "ListAgentMessages", "SendAgentMessage", "ConfirmAgentAction"}


def test_every_rpc_has_a_tenancy_case():
    methods = {m.name for f in (settings_service_pb2, research_service_pb2, generation_service_pb2,
                                classification_service_pb2, agent_service_pb2, whatsapp_service_pb2)
               for s in f.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert methods == COVERED


async def test_another_tenant_sees_nothing_of_ours_through_any_rpc(ai, stubs, tenant, other_tenant):
    donor = (await stubs.donors.CreateDonor(new_donor(first_name="Ada"), metadata=tenant.md)).donor
    await ai.settings.UpdateAiSettings(set_pb.UpdateAiSettingsRequest(
        settings=settings_pb2.AiSettings(ai_instructions="ours only", website_url="http://127.0.0.1:9/"),
        update_mask=field_mask_pb2.FieldMask(paths=["ai_instructions", "website_url"])), metadata=tenant.md)
    await ai.settings.UpdatePersonalMemory(set_pb.UpdatePersonalMemoryRequest(memory="mine"), metadata=tenant.md)
    await ai.research.ResearchDonor(res_pb.ResearchDonorRequest(donor_id=donor.id), metadata=tenant.md)

    async def done():
        r = (await ai.research.GetDonorResearch(res_pb.GetDonorResearchRequest(donor_id=donor.id),
                                                metadata=tenant.md)).research
        return r.status == research_pb2.RESEARCH_STATUS_COMPLETED

    await eventually(done, what="our research")
    other = other_tenant.md
    # Our donor and its research: NOT_FOUND, never confirmed to exist.
    await fails(ai.research.ResearchDonor(res_pb.ResearchDonorRequest(donor_id=donor.id), metadata=other),
                grpc.StatusCode.NOT_FOUND)
    await fails(ai.research.GetDonorResearch(res_pb.GetDonorResearchRequest(donor_id=donor.id), metadata=other),
                grpc.StatusCode.NOT_FOUND)
    await fails(ai.generation.GenerateDonorEmail(gen_pb.GenerateDonorEmailRequest(donor_id=donor.id), metadata=other),
                grpc.StatusCode.NOT_FOUND)
    await fails(ai.classification.ClassifyDonor(cls_pb.ClassifyDonorRequest(donor_id=donor.id, suggest_todo=True),
                                                metadata=other), grpc.StatusCode.NOT_FOUND)
    listed = await ai.research.ListDonorResearch(res_pb.ListDonorResearchRequest(donor_id=donor.id), metadata=other)
    assert list(listed.research) == []
    # Settings and memory are per tenant (and per user): theirs are their own defaults.
    s = (await ai.settings.GetAiSettings(set_pb.GetAiSettingsRequest(), metadata=other)).settings
    assert s.organization_id == other_tenant.org_id and s.ai_instructions == "" and s.website_url == ""
    await ai.settings.UpdateAiSettings(set_pb.UpdateAiSettingsRequest(
        settings=settings_pb2.AiSettings(ai_instructions="theirs"),
        update_mask=field_mask_pb2.FieldMask(paths=["ai_instructions"])), metadata=other)
    # no website of theirs to crawl: ours is not used
    await fails(ai.settings.CrawlOrganizationWebsite(set_pb.CrawlOrganizationWebsiteRequest(), metadata=other),
                grpc.StatusCode.FAILED_PRECONDITION)
    m = (await ai.settings.GetPersonalMemory(set_pb.GetPersonalMemoryRequest(), metadata=other)).memory
    assert m.memory == ""
    await ai.settings.UpdatePersonalMemory(set_pb.UpdatePersonalMemoryRequest(memory="theirs"), metadata=other)
    ours = (await ai.settings.GetAiSettings(set_pb.GetAiSettingsRequest(), metadata=tenant.md)).settings
    assert ours.ai_instructions == "ours only"
    mine = (await ai.settings.GetPersonalMemory(set_pb.GetPersonalMemoryRequest(), metadata=tenant.md)).memory
    assert mine.memory == "mine"


async def test_a_tenant_header_the_token_does_not_grant_is_permission_denied(ai, tenant, other_tenant):
    md = (("authorization", f"Bearer {tenant.access_token}"), ("x-tenant-id", other_tenant.org_id))
    await fails(ai.settings.GetAiSettings(set_pb.GetAiSettingsRequest(), metadata=md),
                grpc.StatusCode.PERMISSION_DENIED)
