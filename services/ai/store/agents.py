"""ai.ai_agents (the platform's catalog) and the tenant-owned organization_agents,
user_agent_access, agent_sessions and agent_messages."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chassis.db import Connection
from chassis.sql import by_name, every, first


@dataclass
class Agent:
    id: uuid.UUID
    slug: str
    name: str
    description: str
    version: str
    tools: list[str]
    created_at: datetime


@dataclass
class Installed:
    id: uuid.UUID
    agent_id: uuid.UUID
    agent_slug: str
    config: Any
    installed_by: uuid.UUID | None
    created_at: datetime
    tools: list[str]
    agent_name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.config, str):
            self.config = json.loads(self.config)


@dataclass
class Session:
    id: uuid.UUID
    organization_agent_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    created_at: datetime


@dataclass
class AgentMessage:
    id: uuid.UUID
    session_id: uuid.UUID
    seq: int
    role: str
    content: str
    tool_name: str | None
    tool_arguments: Any
    action_status: str | None
    model: str
    created_at: datetime

    def __post_init__(self) -> None:
        if isinstance(self.tool_arguments, str):
            self.tool_arguments = json.loads(self.tool_arguments)


AGENT = "SELECT id, slug, name, description, version, tools, created_at FROM ai.ai_agents"
INSTALLED = ("SELECT o.id, o.agent_id, a.slug AS agent_slug, o.config, o.installed_by, o.created_at, a.tools, "
             "a.name AS agent_name FROM ai.organization_agents o JOIN ai.ai_agents a ON a.id = o.agent_id")
MESSAGE = ("SELECT id, session_id, seq, role, content, tool_name, tool_arguments, action_status, model, created_at "
           "FROM ai.agent_messages")


async def catalog(conn: Connection) -> list[Agent]:
    return await every(conn, f"{AGENT} ORDER BY slug", {}, by_name(Agent))


async def agent(conn: Connection, agent_id: uuid.UUID) -> Agent | None:
    return await first(conn, f"{AGENT} WHERE id = :id", {"id": agent_id}, by_name(Agent))


async def create_agent(conn: Connection, slug: str, name: str, description: str, version: str,
                       tools: list[str]) -> Agent | None:
    return await first(conn, """
        INSERT INTO ai.ai_agents (id, slug, name, description, version, tools)
        VALUES (:id, :slug, :name, :description, :version, :tools) ON CONFLICT (slug) DO NOTHING
        RETURNING id, slug, name, description, version, tools, created_at""",
        {"id": uuid.uuid4(), "slug": slug, "name": name, "description": description, "version": version,
         "tools": tools}, by_name(Agent))


async def install(conn: Connection, org: uuid.UUID, agent_id: uuid.UUID, config: dict,
                  user: uuid.UUID | None) -> uuid.UUID | None:
    row = await first(conn, """
        INSERT INTO ai.organization_agents (id, organization_id, agent_id, config, installed_by)
        VALUES (:id, :org, :agent, CAST(:config AS jsonb), :user) ON CONFLICT (organization_id, agent_id) DO NOTHING
        RETURNING id""", {"id": uuid.uuid4(), "org": org, "agent": agent_id, "config": json.dumps(config),
                          "user": user})
    return row["id"] if row else None


async def installed(conn: Connection, org: uuid.UUID, installed_id: uuid.UUID | None = None) -> list[Installed]:
    where = "WHERE o.organization_id = :org" + (" AND o.id = :id" if installed_id else "")
    return await every(conn, f"{INSTALLED} {where} ORDER BY o.created_at", {"org": org, "id": installed_id},
                       by_name(Installed))


async def grant(conn: Connection, org: uuid.UUID, installed_id: uuid.UUID, user: uuid.UUID,
                by: uuid.UUID | None) -> None:
    await conn.execute("""
        INSERT INTO ai.user_agent_access (organization_id, organization_agent_id, user_id, granted_by)
        VALUES (:org, :inst, :user, :by) ON CONFLICT DO NOTHING""",
        {"org": org, "inst": installed_id, "user": user, "by": by})


async def has_access(conn: Connection, org: uuid.UUID, installed_id: uuid.UUID, user: uuid.UUID) -> bool:
    return bool((await conn.execute(
        "SELECT 1 FROM ai.user_agent_access WHERE organization_id = :org AND organization_agent_id = :inst "
        "AND user_id = :user", {"org": org, "inst": installed_id, "user": user})).scalar())


async def create_session(conn: Connection, org: uuid.UUID, installed_id: uuid.UUID, user: uuid.UUID,
                         title: str) -> Session:
    return await first(conn, """
        INSERT INTO ai.agent_sessions (id, organization_id, organization_agent_id, user_id, title)
        VALUES (:id, :org, :inst, :user, :title)
        RETURNING id, organization_agent_id, user_id, title, created_at""",
        {"id": uuid.uuid4(), "org": org, "inst": installed_id, "user": user, "title": title}, by_name(Session))


async def session(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, *, for_update: bool = False
                  ) -> Session | None:
    return await first(conn, "SELECT id, organization_agent_id, user_id, title, created_at FROM ai.agent_sessions "
                             f"WHERE organization_id = :org AND id = :id{' FOR UPDATE' if for_update else ''}",
                       {"org": org, "id": session_id}, by_name(Session))


async def messages(conn: Connection, org: uuid.UUID, session_id: uuid.UUID) -> list[AgentMessage]:
    return await every(conn, f"{MESSAGE} WHERE organization_id = :org AND session_id = :s ORDER BY seq",
                       {"org": org, "s": session_id}, by_name(AgentMessage))


async def message(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, message_id: uuid.UUID, *,
                  for_update: bool = False) -> AgentMessage | None:
    return await first(conn, f"{MESSAGE} WHERE organization_id = :org AND session_id = :s AND id = :id"
                             f"{' FOR UPDATE' if for_update else ''}",
                       {"org": org, "s": session_id, "id": message_id}, by_name(AgentMessage))


async def add_message(conn: Connection, org: uuid.UUID, session_id: uuid.UUID, role: str, content: str, *,
                      tool_name: str | None = None, tool_arguments: dict | None = None,
                      action_status: str | None = None, model: str = "") -> AgentMessage:
    return await first(conn, f"""
        INSERT INTO ai.agent_messages (id, organization_id, session_id, seq, role, content, tool_name, tool_arguments,
          action_status, model)
        VALUES (:id, :org, :s, (SELECT COALESCE(max(seq), 0) + 1 FROM ai.agent_messages WHERE session_id = :s),
          :role, :content, :tool, CAST(:args AS jsonb), :status, :model)
        RETURNING {MESSAGE.removeprefix('SELECT ').split(' FROM')[0]}""",
        {"id": uuid.uuid4(), "org": org, "s": session_id, "role": role, "content": content, "tool": tool_name,
         "args": json.dumps(tool_arguments) if tool_arguments is not None else None, "status": action_status,
         "model": model}, by_name(AgentMessage))


async def set_action(conn: Connection, org: uuid.UUID, message_id: uuid.UUID, status: str, content: str
                     ) -> AgentMessage:
    return await first(conn, f"""
        UPDATE ai.agent_messages SET action_status = :status, content = :content, updated_at = now()
        WHERE organization_id = :org AND id = :id
        RETURNING {MESSAGE.removeprefix('SELECT ').split(' FROM')[0]}""",
        {"org": org, "id": message_id, "status": status, "content": content}, by_name(AgentMessage))
