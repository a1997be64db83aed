"""`bench email_session`: a 1,000-donor AI email generation session with the built-in composer,
from CreateEmailGenerationSession until comms holds every draft (comms' outbox, the work queue,
ai's worker reading each donor from crm and comms over gRPC with the tenant's service account,
the composer, comms storing the draft), against the composer called in a plain loop on the same
donors' facts in the same run; it checks both wrote the same emails. p99_first_draft: the time
from creating a session to its first stored draft, over 20 small sessions.

    bench email_session: N drafts/s ratio=R loop=L p99_first_draft=MS donors=D

    python -m bench.email_session    (starts identity, crm, comms and ai on free ports; bench database)
"""

from __future__ import annotations

import sys
import time

import grpc
import uvloop
from givance.ai.v1 import settings_pb2, settings_service_pb2, settings_service_pb2_grpc
from givance.comms.v1 import generation_pb2, generation_service_pb2, generation_service_pb2_grpc
from givance.identity.v1 import session_service_pb2, session_service_pb2_grpc
from google.protobuf import field_mask_pb2

from bench import ai_compose, seed
from bench.lag import percentile

DONORS = 1000
FIRST_DRAFT_SESSIONS = 20
PERMISSIONS = ["crm.donors.read", "crm.donations.read", "crm.todos.read", "comms.communications.read",
               "comms.generation.jobs"]


async def give_ai_a_service_account(identity: str, ai: str, tenant: seed.Tenant) -> None:
    async with grpc.aio.insecure_channel(identity) as ch:
        sa = await session_service_pb2_grpc.SessionServiceStub(ch).CreateServiceAccount(
            session_service_pb2.CreateServiceAccountRequest(name="ai generation", permissions=PERMISSIONS),
            metadata=tenant.metadata)
    async with grpc.aio.insecure_channel(ai) as ch:
        await settings_service_pb2_grpc.AiSettingsServiceStub(ch).UpdateAiSettings(
            settings_service_pb2.UpdateAiSettingsRequest(settings=settings_pb2.AiSettings(
                service_client_id=sa.service_account.client_id, service_client_secret=sa.client_secret),
                update_mask=field_mask_pb2.FieldMask(paths=["service_client_id", "service_client_secret"])),
            metadata=tenant.metadata)


async def run_session(stub, tenant: seed.Tenant, donors: list[str], *, until_first: bool = False) -> tuple[float, str]:
    """Seconds from creating the session until it completed (or until its first draft)."""
    started = time.perf_counter()
    session = (await stub.CreateEmailGenerationSession(generation_service_pb2.CreateEmailGenerationSessionRequest(
        session=generation_pb2.EmailGenerationSession(name="Bench", donor_ids=donors,
                                                      signer=generation_pb2.Signer(name="Bench Mark"))),
        metadata=tenant.metadata)).session
    async for update in stub.WatchEmailGenerationSession(
            generation_service_pb2.WatchEmailGenerationSessionRequest(id=session.id), metadata=tenant.metadata):
        s = update.session
        if until_first and s.generated_count >= 1:
            break
        if s.status == generation_pb2.SESSION_STATUS_COMPLETED:
            if s.failed_count:
                raise AssertionError(f"{s.failed_count} drafts failed")
            break
    return time.perf_counter() - started, session.id


async def bodies_of(stub, tenant: seed.Tenant, session_id: str) -> dict[str, str]:
    out, token = {}, ""
    while True:
        r = await stub.ListGeneratedEmails(generation_service_pb2.ListGeneratedEmailsRequest(
            session_id=session_id, page_size=500, page_token=token), metadata=tenant.metadata)
        out.update((e.donor_id, e.body_plain) for e in r.emails)
        token = r.next_page_token
        if not token:
            return out


async def measure(identity: str, crm: str, comms: str, ai: str, donors: int = DONORS, progress=print) -> dict:
    progress(f"email_session: seeding {donors} donors with one gift each")
    tenant = await seed.seed(identity, crm, donors)
    await ai_compose.add_gifts(crm, tenant)
    await give_ai_a_service_account(identity, ai, tenant)
    loop_rate, loop_bodies = await ai_compose.plain_loop(crm, tenant)
    async with grpc.aio.insecure_channel(comms) as ch:
        stub = generation_service_pb2_grpc.EmailGenerationServiceStub(ch)
        await run_session(stub, tenant, tenant.donor_ids[:20])  # warm: connections, the service token
        firsts = [(await run_session(stub, tenant, tenant.donor_ids[i * 5:i * 5 + 5], until_first=True))[0] * 1000
                  for i in range(FIRST_DRAFT_SESSIONS)]
        progress(f"email_session: a {donors}-donor session")
        seconds, session_id = await run_session(stub, tenant, tenant.donor_ids)
        written = await bodies_of(stub, tenant, session_id)
    assert [written[d] for d in tenant.donor_ids] == loop_bodies, "the session wrote other emails than the composer"
    return {"rate": donors / seconds, "loop": loop_rate, "p99_first": percentile(firsts, 99), "donors": donors}


def report_line(f: dict) -> str:
    return (f"bench email_session: {f['rate']:.0f} drafts/s ratio={f['rate'] / f['loop']:.4f} loop={f['loop']:.0f} "
            f"p99_first_draft={f['p99_first']:.0f}ms donors={f['donors']}")


def main() -> None:
    import os

    from bench.__main__ import progress
    from bench.stack import Processes, free_ports, recreate, stack_from_env, wait_healthy

    stack = stack_from_env()
    os.environ.update(stack.env())
    recreate(stack)
    procs = Processes()
    try:
        ports = dict(zip(("identity", "crm", "comms", "ai"), free_ports(4), strict=True))
        addr = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
        for name, port in ports.items():
            procs.start(name, f"services.{name}", env=stack.env(
                **{f"{name.upper()}_PORT": str(port)}, IDENTITY_ADDRESS=addr["identity"], CRM_ADDRESS=addr["crm"],
                COMMS_ADDRESS=addr["comms"], COMMS_HTTP_PORT="-1"))

        async def run() -> None:
            for a in addr.values():
                await wait_healthy(a, procs, timeout=180)
            print(report_line(await measure(addr["identity"], addr["crm"], addr["comms"], addr["ai"],
                                            progress=progress)), flush=True)

        uvloop.run(run())
    finally:
        procs.stop_all()
    sys.exit(0)


if __name__ == "__main__":
    main()
