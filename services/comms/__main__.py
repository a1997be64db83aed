"""python -m services.comms: the service's declaration; the chassis builds it (chassis.spec).

Beside the gRPC server it runs the send queue's worker, its public HTTP (tracking, unsubscribe,
webhooks) on the chassis HttpHost, and, in development (COMMS_MAIL_CATCHER=1, `make run`), the
mail catcher on the SMTP address it sends to.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from chassis.crypto import Keyring
from chassis.http import HttpHost
from chassis.spec import Built, ServiceSpec
from chassis.tenant_tokens import TenantTokens
from services.comms import consumers
from services.comms.api.communications import CommunicationServicer
from services.comms.api.generation import EmailGenerationServicer, GenerationJobServicer
from services.comms.api.messages import MessageServicer
from services.comms.api.public import build_app
from services.comms.api.settings import SettingsServicer
from services.comms.api.suppressions import SuppressionServicer
from services.comms.api.templates import TemplateServicer
from services.comms.consumers import SUBSCRIPTIONS
from services.comms.consumers.bound import bind, unbind
from services.comms.domain.tracking import Signer
from services.comms.handlers import tracking
from services.comms.handlers.deps import Deps
from services.comms.handlers.sender import Sender
from services.comms.providers.catcher import MailCatcher
from services.comms.providers.crm import CrmClient
from services.comms.providers.inbound import InboundSmtp
from services.comms.providers.pdf import receipt_pdf
from services.comms.providers.sms import DevSms, TwilioSms
from services.comms.providers.smtp import SmtpProvider
from services.comms.providers.whatsapp import DevWhatsApp, WhatsAppCloud
from services.comms.settings import CommsSettings

log = logging.getLogger(__name__)


class PublicHttp:
    """comms' public HTTP as a worker beside the gRPC server (run/stop)."""

    def __init__(self, host: HttpHost):
        self.host = host
        self._stopped = asyncio.Event()

    @property
    def port(self) -> int:
        return self.host.bound_port

    async def run(self) -> None:
        await self.host.start()
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        if self.host.server.started:
            await self.host.stop()


@dataclass
class Comms:
    deps: Deps
    sender: Sender
    http: PublicHttp | None = None
    catcher: MailCatcher | None = None
    inbound: InboundSmtp | None = None


async def dependencies(b: Built[CommsSettings]) -> Comms:
    s = b.settings
    email = SmtpProvider(s.smtp_host, s.smtp_port, username=s.smtp_username, password=s.smtp_password,
                         security=s.smtp_security, timeout=s.smtp_timeout_seconds, connections=s.smtp_connections)
    sms = (TwilioSms(s.twilio_base_url, s.twilio_account_sid, s.twilio_auth_token, s.twilio_from)
           if s.sms_provider == "twilio" else DevSms(s.mail_dir))
    deps = Deps(db=b.db, settings=s, email=email, sms=sms, crm=CrmClient(s.crm_address),
                keyring=Keyring(s.encryption_keys), event_keys=Keyring(s.event_secret_keys),
                signer=Signer(s.tracking_keys), pdf=receipt_pdf,
                whatsapp=(WhatsAppCloud(s.whatsapp_api_url, s.whatsapp_phone_number_id, s.whatsapp_access_token)
                          if s.whatsapp_provider == "cloud" else DevWhatsApp(s.mail_dir)))
    tokens = TenantTokens.from_settings(s)
    if tokens is None:
        log.warning("comms: no service principal (COMMS_PRINCIPAL_CLIENT_ID, COMMS_PRINCIPAL_CLIENT_SECRET): "
                    "thank-yous take the donor's address from the gift's event")
    else:
        deps.tenant_metadata = tokens.metadata
    deps.paused = b.revocations.suspended_organizations
    bind(deps)
    comms = Comms(deps, Sender(deps, concurrency=max(2 * s.smtp_connections, 2)))
    port = s.resolved_http_port()
    if port is not None:
        comms.http = PublicHttp(HttpHost("comms-http", build_app(deps), host=s.host, port=port,
                                         readiness=[b.db.ping], grace_seconds=s.grace_seconds,
                                         drain_seconds=s.drain_seconds))
    async def on_unsubscribe(token: str) -> bool:
        return await tracking.unsubscribe_by_mail(deps, token)

    if s.inbound_smtp_port >= 0:
        comms.inbound = InboundSmtp(on_unsubscribe, s.host, s.inbound_smtp_port)
    if s.mail_catcher:
        comms.catcher = MailCatcher(s.mail_dir, s.smtp_host, s.smtp_port, on_unsubscribe=on_unsubscribe)
        await comms.catcher.start()
    return comms


def servicers(b: Built[CommsSettings]) -> list[object]:
    deps = b.own.deps
    return [MessageServicer(deps), TemplateServicer(deps), CommunicationServicer(deps), SuppressionServicer(deps),
            SettingsServicer(deps), EmailGenerationServicer(deps), GenerationJobServicer(deps)]


def background(b: Built[CommsSettings]) -> list[object]:
    comms: Comms = b.own
    items: list[object] = [comms.sender]
    if comms.http is not None:
        items.append(comms.http)
    if comms.catcher is not None:
        items.append(comms.catcher)
    if comms.inbound is not None:
        items.append(comms.inbound)
    items.append(_Closer(comms.deps))
    return items


class _Closer:
    """Closes the providers' connections when the service stops."""

    def __init__(self, deps: Deps):
        self.deps = deps
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        await self.deps.email.close()
        await self.deps.sms.close()
        await self.deps.whatsapp.close()
        await self.deps.crm.close()
        unbind(self.deps)


SPEC = ServiceSpec(name="comms", settings=CommsSettings, servicers=servicers, subscriptions=SUBSCRIPTIONS,
                   dependencies=dependencies, background=background)
build = SPEC.build  # build(settings=None, *, verifier=None) -> ServiceHost, as the tests call it

__all__ = ["SPEC", "build", "consumers"]

if __name__ == "__main__":
    SPEC.serve()
