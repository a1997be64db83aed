"""A generation session survives its worker's crash: ai in its own process (acting with the
service account the organization gave it, the wiring `make run` uses) is killed with SIGKILL
mid-session; its unacknowledged jobs go back to the queue, the restarted worker finishes them,
and no donor's draft is written twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid

import grpc
from givance.ai.v1 import settings_pb2, settings_service_pb2_grpc
from givance.ai.v1 import settings_service_pb2 as set_pb
from givance.comms.v1 import generation_pb2 as gpb
from givance.comms.v1 import generation_service_pb2 as pb
from givance.identity.v1 import session_service_pb2 as spb
from google.protobuf import field_mask_pb2

from tests.comms.conftest import email_worker
from tests.helpers import eventually, new_donor

DONORS = 120
PERMISSIONS = ["crm.donors.read", "crm.donations.read", "crm.todos.read", "comms.communications.read",
               "comms.generation.jobs"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _give_ai_a_service_account(stubs, hosts, tenant) -> None:
    sa = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="ai generation", permissions=PERMISSIONS), metadata=tenant.md)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hosts['ai'].bound_port}") as ch:
        await settings_service_pb2_grpc.AiSettingsServiceStub(ch).UpdateAiSettings(set_pb.UpdateAiSettingsRequest(
            settings=settings_pb2.AiSettings(service_client_id=sa.service_account.client_id,
                                             service_client_secret=sa.client_secret),
            update_mask=field_mask_pb2.FieldMask(paths=["service_client_id", "service_client_secret"])),
            metadata=tenant.md)


async def test_a_worker_killed_mid_session_resumes_without_writing_any_donor_twice(stubs, tenant, generation, hosts,
                                                                                  admin_db):
    gen, _ = generation
    await _give_ai_a_service_account(stubs, hosts, tenant)
    donors = []
    for start in range(0, DONORS, 20):
        donors += [d.donor.id for d in await asyncio.gather(*(stubs.donors.CreateDonor(
            new_donor(first_name=f"R{i}"), metadata=tenant.md) for i in range(start, start + 20)))]
    in_process = email_worker(hosts)
    await in_process.stop()  # only the worker in its own process takes jobs
    env = {**os.environ, "AI_PORT": str(_free_port()), "AI_METRICS_PORT": "-1",
           "IDENTITY_ADDRESS": f"127.0.0.1:{hosts['identity'].bound_port}",
           "AI_CRM_ADDRESS": f"127.0.0.1:{hosts['crm'].bound_port}",
           "AI_COMMS_ADDRESS": f"127.0.0.1:{hosts['comms'].bound_port}"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.ai", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        session = (await gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
            session=gpb.EmailGenerationSession(name="Resume", donor_ids=donors, signer=gpb.Signer(name="Dana"))),
            metadata=tenant.md)).session

        async def progress() -> int:
            return (await gen.GetEmailGenerationSession(pb.GetEmailGenerationSessionRequest(id=session.id),
                                                        metadata=tenant.md)).session.generated_count

        await eventually(lambda: _at_least(progress, 5), what="the worker process to write some drafts")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        killed_at = await progress()
        assert killed_at < DONORS, "the session finished before the worker was killed"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await in_process.run()  # the worker restarts: the killed one's jobs come back to it

    final = [u.session async for u in gen.WatchEmailGenerationSession(
        pb.WatchEmailGenerationSessionRequest(id=session.id), metadata=tenant.md)][-1]
    assert final.status == gpb.SESSION_STATUS_COMPLETED
    assert (final.generated_count, final.failed_count) == (DONORS, 0)
    org = uuid.UUID(tenant.org_id)
    rows = await admin_db.fetch("SELECT donor_id, count(*) AS n FROM comms.generated_emails "
                                "WHERE organization_id = $1 AND session_id = $2 GROUP BY donor_id",
                                org, uuid.UUID(session.id))
    assert sorted(str(r["donor_id"]) for r in rows) == sorted(donors) and {r["n"] for r in rows} == {1}
    assert await admin_db.fetchval("SELECT count(*) FROM comms.generation_jobs WHERE organization_id = $1 "
                                   "AND session_id = $2 AND status <> 'done'", org, uuid.UUID(session.id)) == 0


async def _at_least(progress, n: int) -> bool:
    return await progress() >= n
