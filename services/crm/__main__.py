"""python -m services.crm: the service's declaration; the chassis builds it (chassis.spec).

Its own objects, built once at start (`dependencies`): the keyring that seals clients' tax ids,
the object store of documents with the link key, the catalogue of message templates a workflow
may name and the workflow steps' providers (comms' messenger, the webhook caller), each comms'
when CRM_COMMS_ADDRESS is set. Beside the gRPC server (`background`): crm's public HTTP host
(signed download links, signing by a contact; 127.0.0.1:8083) and the workflow worker (due
steps, waits and schedules from crm.workflow_due).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from chassis.crypto import Keyring
from chassis.http import HttpHost
from chassis.settings import plain_dsn
from chassis.spec import Built, ServiceSpec
from chassis.tenant_tokens import TenantTokens
from services.crm.api import links_http
from services.crm.api.clients import ClientServicer
from services.crm.api.documents import DocumentServicer
from services.crm.api.donations import DonationServicer
from services.crm.api.donor_lists import DonorListServicer
from services.crm.api.donors import DonorServicer
from services.crm.api.funds import FundServicer
from services.crm.api.gift_batches import GiftBatchServicer
from services.crm.api.households import HouseholdServicer
from services.crm.api.insight import InsightServicer
from services.crm.api.journeys import JourneyServicer
from services.crm.api.matching_gifts import MatchingGiftServicer
from services.crm.api.pledges import PledgeServicer
from services.crm.api.projects import ProjectServicer
from services.crm.api.receipts import ReceiptServicer
from services.crm.api.todos import TodoServicer
from services.crm.api.workflows import WorkflowServicer
from services.crm.consumers import SUBSCRIPTIONS
from services.crm.consumers.workflow_worker import WorkflowWorker
from services.crm.handlers.documents import DocumentDeps
from services.crm.handlers.workflow_steps import Effects
from services.crm.providers.comms_messenger import GrpcMessenger
from services.crm.providers.message_templates import CommsTemplates, TemplateCatalog, UncheckedTemplates
from services.crm.providers.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from services.crm.providers.webhooks import HttpWebhooks
from services.crm.settings import (
    DEV_ENCRYPTION_KEYS,
    DEV_LINK_SIGNING_KEY,
    DEV_WORKFLOW_SECRET_KEYS,
    CrmSettings,
)

log = logging.getLogger("services.crm")


def object_store(s: CrmSettings) -> ObjectStore:
    if s.object_store == "s3":
        return S3ObjectStore(bucket=s.s3_bucket, endpoint_url=s.s3_endpoint_url, region=s.s3_region,
                             access_key_id=s.s3_access_key_id, secret_access_key=s.s3_secret_access_key)
    if s.object_store == "local":
        return LocalObjectStore(s.object_store_dir)
    raise ValueError(f"CRM_OBJECT_STORE must be local or s3, not {s.object_store!r}")


def warn_about_dev_keys(s: CrmSettings) -> None:
    for name, value, dev in (("CRM_ENCRYPTION_KEYS", s.encryption_keys, DEV_ENCRYPTION_KEYS),
                             ("CRM_LINK_SIGNING_KEY", s.link_signing_key, DEV_LINK_SIGNING_KEY)):
        if value == dev:
            log.warning("crm: %s holds the published development key; set your own outside development", name)
    if DEV_WORKFLOW_SECRET_KEYS.split(":")[0] in {k.split(":")[0].strip() for k in s.workflow_secret_keys.split(",")}:
        log.warning("crm: workflow webhook secrets are sealed with the development key (set CRM_WORKFLOW_SECRET_KEYS)")


def workflow_effects(s: CrmSettings) -> Effects:
    """What workflow steps reach outside crm through: webhooks over HTTP, and comms' SendMessage
    when CRM_COMMS_ADDRESS is set and crm has a service principal (else the development
    messenger, which records and sends nothing)."""
    effects = Effects(keys=Keyring(s.workflow_secret_keys), webhooks=HttpWebhooks())
    if s.comms_address:
        tokens = TenantTokens.from_settings(s)
        if tokens is None:
            log.warning("crm: CRM_COMMS_ADDRESS is set but crm has no service principal "
                        "(CRM_PRINCIPAL_CLIENT_ID and CRM_PRINCIPAL_CLIENT_SECRET): workflow messages are not sent")
        else:
            effects.messenger = GrpcMessenger.with_tokens(s.comms_address, tokens)
    return effects


class PublicHttp:
    """crm's public HTTP host as a worker beside the gRPC server (run/stop)."""

    def __init__(self, deps: DocumentDeps, s: CrmSettings):
        self.deps = deps
        self.settings = s
        self.host = HttpHost("crm-http", links_http.app(deps), host=s.http_host, port=s.resolved_http_port(),
                             readiness=[deps.db.ping], grace_seconds=s.grace_seconds)
        self._stopped = asyncio.Event()

    @property
    def bound_port(self) -> int:
        return self.host.bound_port

    async def run(self) -> None:
        port = await self.host.start()
        if not self.settings.public_url:
            self.deps.public_url = f"http://{self.settings.http_host}:{port}"
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        if self.host.bound_port:
            await self.host.stop()
        await self.deps.objects.close()


class _Closer:
    """Closes the message-template catalogue's channel when the service stops."""

    def __init__(self, catalog: TemplateCatalog):
        self.catalog = catalog
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        close = getattr(self.catalog, "close", None)
        if close is not None:
            await close()


@dataclass
class Own:
    keyring: Keyring  # seals clients' tax ids
    documents: DocumentDeps
    http: PublicHttp | None  # None when CRM_HTTP_PORT=-1
    workflow_keys: Keyring  # seals workflows' webhook secrets
    templates: TemplateCatalog  # the message templates a send_message step may name (comms')


async def dependencies(b: Built[CrmSettings]) -> Own:
    s = b.settings
    warn_about_dev_keys(s)
    documents = DocumentDeps(db=b.db, objects=object_store(s), reads=b.reads, max_document_bytes=s.max_document_bytes,
                             link_key=s.link_signing_key.encode(), max_link_seconds=s.max_link_seconds,
                             public_url=s.public_url or "")
    http = PublicHttp(documents, s) if s.resolved_http_port() >= 0 else None
    templates = CommsTemplates(s.comms_address) if s.comms_address else UncheckedTemplates()
    return Own(keyring=Keyring(s.encryption_keys), documents=documents, http=http,
               workflow_keys=Keyring(s.workflow_secret_keys), templates=templates)


def servicers(b: Built[CrmSettings]) -> list[object]:
    own: Own = b.own
    return [DonorServicer(b.db, b.reads, stream_idle_seconds=b.settings.stream_idle_seconds),
            DonationServicer(b.db, b.reads), FundServicer(b.db), HouseholdServicer(b.db), GiftBatchServicer(b.db),
            ReceiptServicer(b.db, b.reads), PledgeServicer(b.db), MatchingGiftServicer(b.db), JourneyServicer(b.db),
            DonorListServicer(b.db, b.reads), ProjectServicer(b.db), TodoServicer(b.db), InsightServicer(b.db, b.reads),
            ClientServicer(b.db, own.keyring),
            DocumentServicer(own.documents, stream_idle_seconds=b.settings.stream_idle_seconds),
            WorkflowServicer(b.db, own.workflow_keys, own.templates)]


def background(b: Built[CrmSettings]) -> list[object]:
    """crm's public HTTP host (signed links), unless off, and the workflow worker, unless
    CRM_WORKFLOW_WORKER=false."""
    own: Own = b.own
    s = b.settings
    items: list[object] = [own.http] if own.http is not None else []
    items.append(_Closer(own.templates))
    if s.workflow_worker:
        items.append(WorkflowWorker(b.db, workflow_effects(s), dsn=plain_dsn(s.app_database_url("crm")),
                                    poll_seconds=s.workflow_poll_seconds, concurrency=s.workflow_concurrency,
                                    batch=4 * s.workflow_concurrency, paused=b.revocations.suspended_organizations))
    return items


SPEC = ServiceSpec(name="crm", settings=CrmSettings, servicers=servicers, subscriptions=SUBSCRIPTIONS,
                   audits_reads=True, dependencies=dependencies, background=background)
build = SPEC.build  # build(settings=None, *, verifier=None) -> ServiceHost, as the tests call it

if __name__ == "__main__":
    SPEC.serve()
