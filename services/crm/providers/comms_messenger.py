"""The real Messenger: comms' MessageService.SendMessage over gRPC.

The workflow worker acts for a tenant with no caller (the step runs long after any request), so
it calls comms with crm's own tenant token: crm's platform service principal traded at identity
for a short-lived token of that one organization, granted comms.messages.send and bound to comms
(chassis.tenant_tokens.TenantTokens, injected as its `metadata` callable). comms' audit trail
names `service:crm` as the actor. The request id is the step's idempotency key: a step run again
after a crash asks comms for the same message, which comms sends once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

import grpc
from givance.comms.v1 import message_pb2, message_service_pb2, message_service_pb2_grpc
from google.protobuf import struct_pb2

from chassis.errors import ServiceError, Unavailable
from services.crm.providers.messenger import Message, MessageRefused, Sent

_CHANNELS = {"email": message_pb2.CHANNEL_EMAIL, "sms": message_pb2.CHANNEL_SMS,
             "whatsapp": message_pb2.CHANNEL_WHATSAPP}
# Refusals that trying again will not change. (UNAUTHENTICATED is tried again: a token revoked
# by a rotation of crm's credential is replaced by a fresh one.)
_FINAL = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
          grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS}

# async (organization id) -> gRPC metadata acting for it (TenantTokens.metadata)
TenantMetadata = Callable[[uuid.UUID], Awaitable[Sequence[tuple[str, str]]]]


class GrpcMessenger:
    provider = "comms"

    def __init__(self, address: str, metadata: TenantMetadata, *, forget: Callable[[uuid.UUID], None] | None = None,
                 timeout: float = 10.0):
        self.address, self.metadata, self.forget, self.timeout = address, metadata, forget, timeout
        self._channel: grpc.aio.Channel | None = None
        self._tokens = None  # closed with the messenger, when it owns them

    @classmethod
    def with_tokens(cls, address: str, tokens, **kwargs) -> GrpcMessenger:
        """The messenger acting with `tokens` (chassis.tenant_tokens.TenantTokens), which it closes."""
        messenger = cls(address, tokens.metadata, forget=tokens.forget, **kwargs)
        messenger._tokens = tokens
        return messenger

    async def send(self, message: Message) -> Sent:
        try:
            metadata = await self.metadata(message.tenant_id)
        except ServiceError as err:  # identity refused crm a token for this tenant
            raise MessageRefused(f"no token for organization {message.tenant_id}: {err.message}",
                                 retryable=isinstance(err, Unavailable)) from None
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address)
        variables = struct_pb2.Struct()
        variables.update(message.variables)
        request = message_service_pb2.SendMessageRequest(
            request_id=message.request_id, donor_id=message.donor_id, to_address=message.address,
            channel=_CHANNELS.get(message.channel, message_pb2.CHANNEL_EMAIL), template_name=message.template,
            variables=variables)
        stub = message_service_pb2_grpc.MessageServiceStub(self._channel)
        try:
            resp = await stub.SendMessage(request, timeout=self.timeout, metadata=tuple(metadata))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED and self.forget is not None:
                self.forget(message.tenant_id)  # revoked: the next try fetches a fresh token
            raise MessageRefused(f"comms refused the message ({exc.code().name}: {exc.details()})",
                                 retryable=exc.code() not in _FINAL) from None
        return Sent(message_id=resp.message.id, delivered=True, provider=self.provider,
                    extra={"status": message_pb2.MessageStatus.Name(resp.message.status)})

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._tokens is not None:
            await self._tokens.close()
