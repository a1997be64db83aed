"""GatewayConfigService: the organization's payment gateway accounts. Secrets go in, never out."""

from __future__ import annotations

from givance.billing.v1 import gateway_config_pb2, gateway_config_service_pb2_grpc
from givance.billing.v1 import gateway_config_service_pb2 as pb

from chassis import context
from chassis.convert import timestamp
from chassis.crypto import Keyring
from chassis.db import Database
from chassis.resource import etag
from services.billing.domain.gateways import ConfigFields
from services.billing.handlers import gateways as handlers

GATEWAY_IN = {gateway_config_pb2.GATEWAY_STRIPE: "stripe", gateway_config_pb2.GATEWAY_RAZORPAY: "razorpay"}
GATEWAY_OUT = {v: k for k, v in GATEWAY_IN.items()}


def config_to_proto(c: dict) -> gateway_config_pb2.GatewayConfig:
    return gateway_config_pb2.GatewayConfig(
        id=str(c["id"]), organization_id=str(c["organization_id"]), gateway=GATEWAY_OUT[c["gateway"]],
        nickname=c["nickname"], secret_key_hint=c["secret_key_hint"], test_mode=c["test_mode"], active=c["active"],
        webhook_path=f"/webhooks/{c['gateway']}/{c['organization_id']}/{c['id']}",
        create_time=timestamp(c["created_at"]), update_time=timestamp(c["updated_at"]), etag=etag(c["version"]))


class GatewayConfigServicer(gateway_config_service_pb2_grpc.GatewayConfigServiceServicer):
    def __init__(self, db: Database, keyring: Keyring):
        self.db, self.keyring = db, keyring

    async def CreateGatewayConfig(self, request: pb.CreateGatewayConfigRequest, ctx) -> pb.CreateGatewayConfigResponse:
        c = request.gateway_config
        fields = ConfigFields(gateway=GATEWAY_IN.get(c.gateway, ""), nickname=c.nickname, secret_key=c.secret_key,
                              webhook_secret=c.webhook_secret, active=True, key_id=c.key_id)
        row = await handlers.create(self.db, self.keyring, context.current().tenant_id, fields, request.request_id)
        return pb.CreateGatewayConfigResponse(gateway_config=config_to_proto(row))

    async def GetGatewayConfig(self, request: pb.GetGatewayConfigRequest, ctx) -> pb.GetGatewayConfigResponse:
        row = await handlers.get(self.db, context.current().tenant_id, request.id)
        return pb.GetGatewayConfigResponse(gateway_config=config_to_proto(row))

    async def ListGatewayConfigs(self, request: pb.ListGatewayConfigsRequest, ctx) -> pb.ListGatewayConfigsResponse:
        rows = await handlers.list_configs(self.db, context.current().tenant_id)
        return pb.ListGatewayConfigsResponse(gateway_configs=[config_to_proto(r) for r in rows])

    async def DeleteGatewayConfig(self, request: pb.DeleteGatewayConfigRequest, ctx) -> pb.DeleteGatewayConfigResponse:
        row = await handlers.delete(self.db, context.current().tenant_id, request.id, request.etag)
        return pb.DeleteGatewayConfigResponse(gateway_config=config_to_proto(row))
