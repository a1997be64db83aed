"""AgentService: proto in, handler call, proto out (SendAgentMessage streams)."""

from __future__ import annotations

import json

from givance.ai.v1 import agent_pb2, agent_service_pb2_grpc
from givance.ai.v1 import agent_service_pb2 as pb
from google.protobuf import json_format, struct_pb2

from chassis.convert import timestamp
from services.ai.api.common import forwarded, tenant, user
from services.ai.handlers import agents as handlers
from services.ai.handlers.deps import Deps

_ROLE = {"user": agent_pb2.AGENT_ROLE_USER, "assistant": agent_pb2.AGENT_ROLE_ASSISTANT,
         "tool": agent_pb2.AGENT_ROLE_TOOL}
_ACTION = {None: agent_pb2.ACTION_STATUS_UNSPECIFIED, "pending": agent_pb2.ACTION_STATUS_PENDING,
           "confirmed": agent_pb2.ACTION_STATUS_CONFIRMED, "rejected": agent_pb2.ACTION_STATUS_REJECTED}


def agent_proto(a: handlers.Agent) -> agent_pb2.Agent:
    return agent_pb2.Agent(id=str(a.id), slug=a.slug, name=a.name, description=a.description, version=a.version,
                           tools=list(a.tools), create_time=timestamp(a.created_at))


def installed_proto(i: handlers.Installed) -> agent_pb2.OrganizationAgent:
    config = struct_pb2.Struct()
    config.update(i.config or {})
    return agent_pb2.OrganizationAgent(id=str(i.id), agent_id=str(i.agent_id), agent_slug=i.agent_slug, config=config,
                                       installer_id=str(i.installed_by or ""), create_time=timestamp(i.created_at))


def message_proto(m: handlers.AgentMessage) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        id=str(m.id), session_id=str(m.session_id), sequence=m.seq, role=_ROLE[m.role], content=m.content,
        tool_name=m.tool_name or "",
        tool_arguments=json.dumps(m.tool_arguments) if m.tool_arguments is not None else "",
        action_status=_ACTION[m.action_status], model=m.model, create_time=timestamp(m.created_at))


def session_proto(s: handlers.Session) -> agent_pb2.AgentSession:
    return agent_pb2.AgentSession(id=str(s.id), organization_agent_id=str(s.organization_agent_id),
                                  user_id=str(s.user_id), title=s.title, create_time=timestamp(s.created_at))


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, db, deps: Deps):
        self.db = db
        self.deps = deps

    async def ListAgents(self, request, ctx) -> pb.ListAgentsResponse:
        return pb.ListAgentsResponse(agents=[agent_proto(a) for a in await handlers.catalog(self.db, tenant())])

    async def CreateAgent(self, request: pb.CreateAgentRequest, ctx) -> pb.CreateAgentResponse:
        a = request.agent
        row = await handlers.create_agent(self.db, tenant(), a.slug, a.name, a.description, a.version, list(a.tools))
        return pb.CreateAgentResponse(agent=agent_proto(row))

    async def InstallAgent(self, request: pb.InstallAgentRequest, ctx) -> pb.InstallAgentResponse:
        config = json_format.MessageToDict(request.config) if request.HasField("config") else {}
        row = await handlers.install(self.db, tenant(), user(), request.agent_id, config)
        return pb.InstallAgentResponse(organization_agent=installed_proto(row))

    async def ListOrganizationAgents(self, request, ctx) -> pb.ListOrganizationAgentsResponse:
        rows = await handlers.list_installed(self.db, tenant())
        return pb.ListOrganizationAgentsResponse(organization_agents=[installed_proto(r) for r in rows])

    async def GrantAgentAccess(self, request: pb.GrantAgentAccessRequest, ctx) -> pb.GrantAgentAccessResponse:
        await handlers.grant(self.db, tenant(), user(), request.organization_agent_id, request.user_id)
        return pb.GrantAgentAccessResponse()

    async def CreateAgentSession(self, request: pb.CreateAgentSessionRequest, ctx) -> pb.CreateAgentSessionResponse:
        s = await handlers.create_session(self.db, tenant(), user(), request.session.organization_agent_id,
                                          request.session.title)
        return pb.CreateAgentSessionResponse(session=session_proto(s))

    async def ListAgentMessages(self, request: pb.ListAgentMessagesRequest, ctx) -> pb.ListAgentMessagesResponse:
        rows = await handlers.list_messages(self.db, tenant(), user(), request.session_id)
        return pb.ListAgentMessagesResponse(messages=[message_proto(m) for m in rows])

    async def SendAgentMessage(self, request: pb.SendAgentMessageRequest, ctx):
        async for kind, value in handlers.send(self.db, self.deps, tenant(), user(), forwarded(), request.session_id,
                                               request.content):
            if kind == "text":
                yield pb.SendAgentMessageResponse(text_delta=value)
            elif kind == "tool":
                yield pb.SendAgentMessageResponse(tool=message_proto(value))
            else:
                yield pb.SendAgentMessageResponse(answer=message_proto(value))

    async def ConfirmAgentAction(self, request: pb.ConfirmAgentActionRequest, ctx) -> pb.ConfirmAgentActionResponse:
        m = await handlers.confirm(self.db, self.deps, tenant(), user(), forwarded(), request.session_id,
                                   request.message_id, request.confirm)
        return pb.ConfirmAgentActionResponse(message=message_proto(m))
