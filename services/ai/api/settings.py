"""AiSettingsService: proto in, handler call, proto out."""

from __future__ import annotations

from givance.ai.v1 import settings_pb2, settings_service_pb2_grpc
from givance.ai.v1 import settings_service_pb2 as pb

from chassis.convert import timestamp
from chassis.errors import PermissionDenied
from chassis.resource import etag
from services.ai.api.common import tenant, user
from services.ai.handlers import settings as handlers
from services.ai.handlers.deps import Deps

_PROVIDER_IN = {
    settings_pb2.MODEL_PROVIDER_UNSPECIFIED: "builtin", settings_pb2.MODEL_PROVIDER_BUILTIN: "builtin",
    settings_pb2.MODEL_PROVIDER_OPENAI_COMPATIBLE: "openai", settings_pb2.MODEL_PROVIDER_ANTHROPIC: "anthropic",
}
_PROVIDER_OUT = {v: k for k, v in _PROVIDER_IN.items() if k != settings_pb2.MODEL_PROVIDER_UNSPECIFIED}


def to_proto(s: handlers.Settings, used: int) -> settings_pb2.AiSettings:
    return settings_pb2.AiSettings(
        organization_id=str(s.organization_id), provider=_PROVIDER_OUT[s.provider], base_url=s.base_url,
        model=s.model, api_key_set=bool(s.api_key_sealed), monthly_token_budget=s.monthly_token_budget,
        tokens_used_this_month=used, ai_instructions=s.ai_instructions, website_url=s.website_url,
        website_summary=s.website_summary, website_last_crawl_time=timestamp(s.website_last_crawled),
        update_time=timestamp(s.updated_at), etag=etag(s.version) if s.version else "",
        service_client_id=s.service_client_id, service_account_set=bool(s.service_secret_sealed))


def _memory(m) -> settings_pb2.PersonalMemory:
    return settings_pb2.PersonalMemory(user_id=str(m.user_id), memory=m.memory, update_time=timestamp(m.updated_at))


def _user_required():
    u = user()
    if u is None:
        raise PermissionDenied("personal memory belongs to a user, not a service account", reason="USER_REQUIRED")
    return u


class AiSettingsServicer(settings_service_pb2_grpc.AiSettingsServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def GetAiSettings(self, request, ctx) -> pb.GetAiSettingsResponse:
        return pb.GetAiSettingsResponse(settings=to_proto(*await handlers.get(self.db, tenant())))

    async def UpdateAiSettings(self, request: pb.UpdateAiSettingsRequest, ctx) -> pb.UpdateAiSettingsResponse:
        s = request.settings
        changes = {"provider": _PROVIDER_IN.get(s.provider, f"unknown ({s.provider})"), "base_url": s.base_url,
                   "model": s.model, "api_key": s.api_key, "monthly_token_budget": s.monthly_token_budget,
                   "ai_instructions": s.ai_instructions, "website_url": s.website_url,
                   "service_client_id": s.service_client_id, "service_client_secret": s.service_client_secret}
        saved = await handlers.update(self.db, self.deps, tenant(), changes, list(request.update_mask.paths), s.etag)
        return pb.UpdateAiSettingsResponse(settings=to_proto(*saved))

    async def CrawlOrganizationWebsite(self, request, ctx) -> pb.CrawlOrganizationWebsiteResponse:
        return pb.CrawlOrganizationWebsiteResponse(
            settings=to_proto(*await handlers.crawl_website(self.db, self.deps, tenant())))

    async def GetPersonalMemory(self, request, ctx) -> pb.GetPersonalMemoryResponse:
        m = await handlers.get_memory(self.db, tenant(), _user_required())
        return pb.GetPersonalMemoryResponse(memory=_memory(m))

    async def UpdatePersonalMemory(self, request: pb.UpdatePersonalMemoryRequest,
                                   ctx) -> pb.UpdatePersonalMemoryResponse:
        m = await handlers.put_memory(self.db, tenant(), _user_required(), request.memory)
        return pb.UpdatePersonalMemoryResponse(memory=_memory(m))
