"""ai's research job, which has no caller, reads crm with ai's own tenant token (its platform
service principal's, chassis.tenant_tokens): crm records service:ai as the reader, the job
holds no more than its requester could see, and a donor deleted meanwhile fails it."""

from __future__ import annotations

import uuid

import pytest
from givance.ai.v1 import research_pb2
from givance.ai.v1 import research_service_pb2 as res_pb
from givance.crm.v1 import donation_pb2, donation_service_pb2, donor_service_pb2
from givance.identity.v1 import audit_service_pb2 as apb
from givance.identity.v1 import identity_service_pb2 as id_pb
from givance.identity.v1 import session_service_pb2 as spb

from chassis.errors import NotFound
from chassis.tenant_tokens import TenantTokens, dev_secret
from services.ai.domain.facts import DonorFacts
from services.ai.handlers import research
from services.ai.handlers.deps import Deps
from services.ai.providers.crm import CrmReader
from tests.helpers import day, eventually, new_donor, usd


async def _donor(stubs, tenant):
    d = (await stubs.donors.CreateDonor(new_donor(first_name="Grace"), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(donation_service_pb2.RecordDonationRequest(
        donation=donation_pb2.Donation(donor_id=d.id, amount=usd(250), date=day(2026, 10, 3))), metadata=tenant.md)
    return d


async def _researched(ai, md, donor_id: str):
    first = (await ai.research.ResearchDonor(res_pb.ResearchDonorRequest(donor_id=donor_id), metadata=md)).research

    async def done():
        r = (await ai.research.GetDonorResearch(res_pb.GetDonorResearchRequest(donor_id=donor_id,
                                                                               version=first.version),
                                                metadata=md)).research
        return r if r.status != research_pb2.RESEARCH_STATUS_PENDING else None
    return await eventually(done, what="the research job")


async def test_the_job_reads_crm_as_ai_and_no_more_than_its_requester(ai, stubs, tenant):
    d = await _donor(stubs, tenant)
    r = await _researched(ai, tenant.md, d.id)
    assert r.status == research_pb2.RESEARCH_STATUS_COMPLETED and any("$250.00" in c.text for c in r.claims)

    async def read_by_ai():
        got = await stubs.audit.ListActivity(apb.ListActivityRequest(actor_id="service:ai", resource_id=d.id),
                                             metadata=tenant.md)
        return [e for e in got.entries if e.action == "crm.donor.read"]
    [entry] = await eventually(read_by_ai, what="crm's read of the donor by service:ai")
    assert entry.actor_kind == "platform_service"

    # A requester who may read donors but not gifts: the job, though ai's token reads gifts, leaves them out.
    account = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="researcher", permissions=["crm.donors.read", "ai.research.write", "ai.research.read"]),
        metadata=tenant.md)
    token = (await stubs.identity.IssueServiceToken(id_pb.IssueServiceTokenRequest(
        client_id=account.service_account.client_id, client_secret=account.client_secret))).access_token
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))
    r = await _researched(ai, md, d.id)
    assert r.status == research_pb2.RESEARCH_STATUS_COMPLETED
    assert not any("$250.00" in c.text for c in r.claims), [c.text for c in r.claims]


async def test_a_donor_deleted_before_the_job_runs(stubs, tenant, hosts, identity_host):
    d = await _donor(stubs, tenant)
    crm = CrmReader(f"127.0.0.1:{hosts['crm'].bound_port}")
    tokens = TenantTokens(f"127.0.0.1:{identity_host.bound_port}", "ai", dev_secret("ai"))
    deps = Deps(keyring=None, models=None, fetcher=None, search=None, crm=crm, tenant_metadata=tokens.metadata)
    try:
        requested = DonorFacts(donor_id=d.id, first_name="Grace", last_name="Lovelace", withheld=["open_todos"])
        facts = await research.current_facts(deps, uuid.UUID(tenant.org_id), requested)
        assert facts.first_name == "Grace" and [g.amount for g in facts.gifts] == ["250.00"]
        assert facts.open_todos == [] and facts.withheld == ["open_todos"]
        await stubs.donors.DeleteDonor(donor_service_pb2.DeleteDonorRequest(id=d.id), metadata=tenant.md)
        with pytest.raises(NotFound):
            await research.current_facts(deps, uuid.UUID(tenant.org_id), requested)
        # without a token the job works from what its requester read
        assert await research.current_facts(Deps(keyring=None, models=None, fetcher=None, search=None, crm=crm),
                                            uuid.UUID(tenant.org_id), requested) is requested
    finally:
        await tokens.close()
        await crm.close()
