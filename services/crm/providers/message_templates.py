"""Which message templates an organization has: a workflow's send_message step names one, and a
definition that names a template the organization does not have is refused when it is saved
(INVALID_ARGUMENT naming the step's `template`), not when the step runs days later.

comms owns templates (the organization's own and the system ones it has not overridden).
- `CommsTemplates`: comms' TemplateService.ListTemplates, called with the caller's own
  credentials (the request that saves the workflow), every page.
- `UncheckedTemplates`, the development default when crm has no comms address
  (CRM_COMMS_ADDRESS): it knows no catalogue and refuses nothing (the development messenger
  sends nothing either).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import grpc
from givance.comms.v1 import template_service_pb2, template_service_pb2_grpc

from chassis.errors import PermissionDenied, Unavailable

Metadata = Sequence[tuple[str, str]]


class TemplateCatalog(Protocol):
    async def missing(self, names: Iterable[str], metadata: Metadata) -> set[str]:
        """The names among `names` the organization (of `metadata`'s tenant) has no template of."""


class UncheckedTemplates:
    checks = False

    async def missing(self, names: Iterable[str], metadata: Metadata) -> set[str]:
        return set()


class CommsTemplates:
    checks = True
    PAGE = 500
    MAX_PAGES = 100

    def __init__(self, address: str, timeout: float = 5.0):
        self.address, self.timeout = address, timeout
        self._channel: grpc.aio.Channel | None = None

    async def missing(self, names: Iterable[str], metadata: Metadata) -> set[str]:
        wanted = set(names)
        if not wanted:
            return set()
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address)
        stub = template_service_pb2_grpc.TemplateServiceStub(self._channel)
        token = ""
        for _ in range(self.MAX_PAGES):
            try:
                page = await stub.ListTemplates(template_service_pb2.ListTemplatesRequest(
                    page_size=self.PAGE, page_token=token), metadata=tuple(metadata), timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
                    raise PermissionDenied("checking a workflow's message templates needs comms.templates.read",
                                           reason="TEMPLATES_NOT_READABLE") from None
                raise Unavailable(f"comms could not list the message templates ({exc.code().name}); "
                                  "the workflow was not saved") from None
            wanted -= {t.name for t in page.templates}
            token = page.next_page_token
            if not wanted or not token:
                break
        return wanted

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
