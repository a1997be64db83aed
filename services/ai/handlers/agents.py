"""Agents: the catalog (platform operators write it), installation per organization, access
per user, and conversations.

SendAgentMessage runs the agent: the built-in agent (no model) plans from the user's message;
an organization's model is offered the agent's tools and loops (at most MAX_TURNS) until it
answers. Every tool call is stored in the conversation and audited. Read tools run at once
through crm's API with the user's OWN token, so an agent never sees more than its user; a write
tool only becomes a pending action the user confirms (ConfirmAgentAction runs it then, with
their token). Tool results go back to a model as data blocks, never as instructions.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from chassis.db import Database
from chassis.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Violations,
)
from chassis.resource import parse_id
from services.ai.domain import agents as domain
from services.ai.domain import guard
from services.ai.domain.models import BUILTIN_MODEL, Completion, Message, ModelError, TextDelta
from services.ai.handlers import usage, writer
from services.ai.handlers.deps import Deps
from services.ai.store import agents as store
from services.ai.store import settings as settings_store
from services.ai.store.agents import Agent, AgentMessage, Installed, Session

log = logging.getLogger(__name__)
MAX_TURNS = 4
CONTENT_MAX = 4000
CONFIG_MAX = 10_000
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


async def catalog(db: Database, org: uuid.UUID) -> list[Agent]:
    async with db.unit_of_work(org) as uow:
        return await store.catalog(uow.conn)


async def create_agent(db: Database, org: uuid.UUID, slug: str, name: str, description: str, version: str,
                       tools: list[str]) -> Agent:
    v = Violations()
    if not _SLUG.fullmatch(slug):
        v.add("agent.slug", "must be 2 to 63 lowercase letters, digits and hyphens")
    v.check_text("agent.name", name.strip(), 200, required=True)
    v.check_text("agent.description", description, 2000)
    v.check_text("agent.version", version, 50)
    for i, t in enumerate(tools):
        if t not in domain.KNOWN:
            v.add(f"agent.tools[{i}]", f"unknown tool {t!r} ({', '.join(sorted(domain.KNOWN))})")
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        row = await store.create_agent(uow.conn, slug, name.strip(), description, version or "1",
                                       list(dict.fromkeys(tools)))
        if row is None:
            raise AlreadyExists(f"an agent with slug {slug!r} exists", reason="AGENT_SLUG_TAKEN")
        uow.audit("ai.agent.created", "ai_agent", str(row.id), after={"slug": slug, "tools": row.tools})
    return row


async def install(db: Database, org: uuid.UUID, user: uuid.UUID | None, agent_id: str, config: dict) -> Installed:
    aid = parse_id(agent_id, "agent_id")
    if len(json.dumps(config)) > CONFIG_MAX:
        raise InvalidArgument.field("config", f"must be at most {CONFIG_MAX} bytes of JSON")
    if "instructions" in config and not isinstance(config["instructions"], str):
        raise InvalidArgument.field("config.instructions", "must be a string")
    async with db.unit_of_work(org) as uow:
        if await store.agent(uow.conn, aid) is None:
            raise NotFound(f"agent {agent_id} not found")
        installed_id = await store.install(uow.conn, org, aid, config, user)
        if installed_id is None:
            raise AlreadyExists("the agent is installed already", reason="AGENT_ALREADY_INSTALLED")
        if user is not None:
            await store.grant(uow.conn, org, installed_id, user, user)
        uow.audit("ai.agent.installed", "organization_agent", str(installed_id), after={"agent_id": str(aid)})
        return (await store.installed(uow.conn, org, installed_id))[0]


async def list_installed(db: Database, org: uuid.UUID) -> list[Installed]:
    async with db.unit_of_work(org) as uow:
        return await store.installed(uow.conn, org)


async def grant(db: Database, org: uuid.UUID, by: uuid.UUID | None, installed_id: str, user_id: str) -> None:
    v = Violations()
    inst = parse_id(installed_id, "organization_agent_id", v)
    user = parse_id(user_id, "user_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if not await store.installed(uow.conn, org, inst):
            raise NotFound(f"organization agent {installed_id} not found")
        await store.grant(uow.conn, org, inst, user, by)
        uow.audit("ai.agent.access_granted", "organization_agent", str(inst), after={"user_id": str(user)})


def _user(user: uuid.UUID | None) -> uuid.UUID:
    if user is None:
        raise PermissionDenied("agent conversations belong to users, not service accounts", reason="USER_REQUIRED")
    return user


async def create_session(db: Database, org: uuid.UUID, user: uuid.UUID | None, installed_id: str,
                         title: str) -> Session:
    user = _user(user)
    v = Violations()
    inst = parse_id(installed_id, "session.organization_agent_id", v)
    v.check_text("session.title", title, 200)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if not await store.installed(uow.conn, org, inst):
            raise NotFound(f"organization agent {installed_id} not found")
        if not await store.has_access(uow.conn, org, inst, user):
            raise PermissionDenied("you have no access to this agent", reason="AGENT_ACCESS_REQUIRED")
        return await store.create_session(uow.conn, org, inst, user, title.strip())


async def _own_session(uow, org: uuid.UUID, user: uuid.UUID, session_id: uuid.UUID, name: str) -> Session:
    s = await store.session(uow.conn, org, session_id)
    if s is None or s.user_id != user:  # another user's conversation is not confirmed to exist
        raise NotFound(f"agent session {name} not found")
    return s


async def list_messages(db: Database, org: uuid.UUID, user: uuid.UUID | None, session_id: str) -> list[AgentMessage]:
    user = _user(user)
    sid = parse_id(session_id, "session_id")
    async with db.unit_of_work(org) as uow:
        await _own_session(uow, org, user, sid, session_id)
        return await store.messages(uow.conn, org, sid)


async def send(db: Database, deps: Deps, org: uuid.UUID, user: uuid.UUID | None, metadata, session_id: str,
               content: str) -> AsyncIterator[tuple[str, Any]]:
    """Yields ("text", str), ("tool", AgentMessage) and last ("answer", AgentMessage)."""
    user = _user(user)
    v = Violations()
    sid = parse_id(session_id, "session_id", v)
    v.check_text("content", content.strip(), CONTENT_MAX, required=True)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        session = await _own_session(uow, org, user, sid, session_id)
        inst = (await store.installed(uow.conn, org, session.organization_agent_id))[0]
        if not await store.has_access(uow.conn, org, inst.id, user):
            raise PermissionDenied("you have no access to this agent", reason="AGENT_ACCESS_REQUIRED")
        await usage.check_budget(uow, org)
        settings = await settings_store.get(uow.conn, org)
        history = await store.messages(uow.conn, org, sid)
        await store.add_message(uow.conn, org, sid, "user", content.strip())
    allowed = frozenset(inst.tools) & domain.KNOWN
    model = writer.model_for(deps, settings)
    if model is None:
        results = []
        for name, args in domain.plan(content, allowed):
            msg, result = await _call_tool(db, deps, org, metadata, sid, inst, name, args)
            results.append((name, args, result))
            yield "tool", msg
        text = domain.answer(results)
        yield "text", text
        answer = await _add(db, org, sid, "assistant", text, model=BUILTIN_MODEL)
        yield "answer", answer
        return
    system = "\n".join([
        f"You are {inst.agent_name}, an assistant for a nonprofit's staff. Use the tools to look things up; "
        "a tool that writes only proposes an action the user confirms.", guard.DATA_RULE,
        *(["The organization's instructions for you: " + inst.config["instructions"]]
          if isinstance(inst.config.get("instructions"), str) else [])])
    turns = [Message(m.role, m.content) for m in history if m.role in ("user", "assistant") and m.content]
    turns.append(Message("user", content.strip()))
    tools = [domain.TOOLS[t] for t in sorted(allowed)]
    completion: Completion | None = None
    for _ in range(MAX_TURNS):
        completion = None
        try:
            async for item in model.stream(system, turns, tools=tools, max_tokens=1000):
                if isinstance(item, TextDelta):
                    yield "text", item.text
                else:
                    completion = item
        except ModelError as exc:
            from chassis.errors import Unavailable

            raise Unavailable(f"the organization's model could not answer: {exc}") from exc
        async with db.unit_of_work(org) as uow:
            await usage.record(uow, org, completion, "agent")
        if not completion.tool_calls:
            break
        outputs = []
        for call in completion.tool_calls:
            msg, result = await _call_tool(db, deps, org, metadata, sid, inst, call.name, call.arguments)
            yield "tool", msg
            outputs.append({"tool": call.name, "result": result})
        turns.append(Message("assistant", completion.text or "(looking it up)"))
        turns.append(Message("user", "Tool results:\n" + guard.data_block("tool_results", outputs)))
    text = completion.text if completion is not None and completion.text else "I could not finish that."
    answer = await _add(db, org, sid, "assistant", text, model=completion.model if completion else "")
    yield "answer", answer


async def _add(db: Database, org: uuid.UUID, sid: uuid.UUID, role: str, content: str, **kw) -> AgentMessage:
    async with db.unit_of_work(org) as uow:
        return await store.add_message(uow.conn, org, sid, role, content, **kw)


async def _call_tool(db: Database, deps: Deps, org: uuid.UUID, metadata, sid: uuid.UUID, inst: Installed, name: str,
                     raw_args: dict) -> tuple[AgentMessage, Any]:
    """Run a read tool with the user's token, or record a write as a pending action; either way
    it is stored in the conversation and audited."""
    result: Any
    status = None
    args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
    if name not in inst.tools or name not in domain.KNOWN:
        result = {"error": f"the tool {name!r} is not available to this agent"}
    else:
        try:
            args = domain.check_arguments(name, args)
            if name in domain.WRITES:
                status, result = "pending", {"proposed": True, "needs": "the user's confirmation"}
            elif name == "search_donors":
                result = await deps.crm.search_donors(metadata, args["query"])
            else:
                facts = await deps.crm.donor_facts(metadata, args["donor_id"])
                result = {"name": facts.name, "city": facts.city, "journey_stage": facts.journey_stage,
                          "gifts": [asdict(g) for g in facts.gifts], "open_todos": facts.open_todos}
        except ServiceError as exc:  # a refused or failed call is the tool's answer, not the turn's end
            result = {"error": exc.message}
    async with db.unit_of_work(org) as uow:
        msg = await store.add_message(uow.conn, org, sid, "tool", json.dumps(result, default=str)[:20_000],
                                      tool_name=name, tool_arguments=args, action_status=status)
        uow.audit("ai.agent.tool_called", "agent_session", str(sid),
                  after={"tool": name, "arguments": args, "pending": status == "pending"})
    return msg, result


async def confirm(db: Database, deps: Deps, org: uuid.UUID, user: uuid.UUID | None, metadata, session_id: str,
                  message_id: str, yes: bool) -> AgentMessage:
    user = _user(user)
    v = Violations()
    sid = parse_id(session_id, "session_id", v)
    mid = parse_id(message_id, "message_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        await _own_session(uow, org, user, sid, session_id)
        msg = await store.message(uow.conn, org, sid, mid, for_update=True)
        if msg is None:
            raise NotFound(f"message {message_id} not found")
        if msg.action_status != "pending":
            raise FailedPrecondition("the action is not pending", reason="ACTION_NOT_PENDING")
        if not yes:
            done = await store.set_action(uow.conn, org, mid, "rejected", json.dumps({"rejected": True}))
        else:
            args = msg.tool_arguments
            todo_id = await deps.crm.create_todo(metadata, args["donor_id"], args["title"],
                                                 "Proposed by an AI agent; confirmed by the user.",
                                                 f"agent-action:{mid}")
            done = await store.set_action(uow.conn, org, mid, "confirmed", json.dumps({"todo_id": todo_id}))
        uow.audit("ai.agent.action_" + ("confirmed" if yes else "rejected"), "agent_session", str(sid),
                  after={"message_id": str(mid), "tool": msg.tool_name})
    return done
