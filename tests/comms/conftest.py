"""comms' fixtures: its host, its public HTTP, the session's mail catcher and helpers to read it."""

from __future__ import annotations

import email
import email.policy

import httpx
import pytest

from services.comms.providers.catcher import list_mail, raw_mail
from tests.helpers import EVENTUALLY_TIMEOUT, eventually


@pytest.fixture(scope="session")
async def comms_host(hosts):
    return hosts["comms"]


@pytest.fixture(scope="session")
async def comms_http(comms_host) -> httpx.AsyncClient:
    public = next(w for w in comms_host.workers if type(w).__name__ == "PublicHttp")
    await eventually(lambda: public.port > 0, timeout=10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{public.port}", follow_redirects=False) as client:
        yield client


class Mailbox:
    def __init__(self, catcher):
        self.catcher = catcher
        self.folder = catcher.handler.directory

    def to(self, address: str) -> list[dict]:
        return [m for m in list_mail(self.folder) if address.lower() in [r.lower() for r in m["rcpt_tos"]]]

    async def wait_for(self, address: str, count: int = 1,
                       timeout: float = EVENTUALLY_TIMEOUT) -> list[email.message.EmailMessage]:
        await eventually(lambda: len(self.to(address)) >= count, timeout=timeout)
        return [self.parse(m["id"]) for m in self.to(address)]

    def raw(self, mail_id: str) -> bytes:
        return raw_mail(self.folder, mail_id)

    def parse(self, mail_id: str) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw(mail_id), policy=email.policy.default)


@pytest.fixture(scope="session")
def mailbox(mail_catcher) -> Mailbox:
    return Mailbox(mail_catcher)


@pytest.fixture(scope="session")
async def generation(hosts):
    """comms' generation stubs: the public EmailGenerationService and the internal jobs service."""
    import grpc
    from givance.comms.v1 import generation_service_pb2_grpc as gen_grpc

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{hosts['comms'].bound_port}")
    yield (gen_grpc.EmailGenerationServiceStub(channel), gen_grpc.GenerationJobServiceStub(channel))
    await channel.close()


class Acting:
    """The credentials ai's generation worker is given in these tests (its injection point,
    `deps.credentials`): the access token a test minted for its tenant (stubs.sign_up), by
    organization; an organization not registered here falls back to the service's own wiring."""

    def __init__(self, fallback):
        self.fallback = fallback
        self.tokens: dict[str, tuple[tuple[str, str], ...]] = {}
        self.asked: list[str] = []

    def register(self, tenant) -> None:
        self.tokens[tenant.org_id] = tenant.md

    async def __call__(self, org):
        self.asked.append(str(org))
        md = self.tokens.get(str(org))
        return md if md is not None else await self.fallback(org)


@pytest.fixture(scope="session")
async def acting(hosts):
    from services.ai.consumers import EMAIL_JOBS

    deps = EMAIL_JOBS.deps
    original = deps.credentials
    deps.credentials = Acting(original)
    yield deps.credentials
    deps.credentials = original


def email_worker(hosts):
    """The in-process ai host's generation consumer (a test may stop and restart it)."""
    from services.ai.consumers.email_jobs import QUEUE

    return next(w for w in hosts["ai"].workers if getattr(w, "queue_name", None) == QUEUE)
