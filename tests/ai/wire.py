"""Local HTTP servers that speak the model providers' wire formats (OpenAI Chat Completions and
Anthropic Messages, plain JSON and SSE streams, tool calls) and Brave Search's, for the real SDKs
and clients to talk to. Each is scripted by the test: `replies` is a list of what to answer in
turn; what they were sent is kept in `received`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from chassis.http import HttpHost


@dataclass
class Reply:
    text: str = ""
    tool: tuple[str, dict] | None = None  # (name, arguments)
    status: int = 200  # 429 or 503: an error the SDK retries
    prompt_tokens: int = 11
    completion_tokens: int = 7


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    # When set: a reply chosen from the request itself (a server that obeys injected text).
    decide: Any = None

    def next(self, body: dict) -> Reply:
        self.received.append(body)
        if self.decide is not None:
            return self.decide(body)
        return self.replies.pop(0) if self.replies else Reply(text="ok")


def _sse(events: list[tuple[str | None, dict | str]]) -> StreamingResponse:
    async def gen():
        for name, data in events:
            payload = data if isinstance(data, str) else json.dumps(data)
            yield (f"event: {name}\n" if name else "") + f"data: {payload}\n\n"
    return StreamingResponse(gen(), media_type="text/event-stream")


def openai_app(script: Script) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        r = script.next(body)
        if r.status != 200:
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}}, status_code=r.status)
        model = body["model"]
        usage = {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                 "total_tokens": r.prompt_tokens + r.completion_tokens}
        calls = [{"id": "call_1", "type": "function",
                  "function": {"name": r.tool[0], "arguments": json.dumps(r.tool[1])}}] if r.tool else None
        if not body.get("stream"):
            msg = {"role": "assistant", "content": r.text or None}
            if calls:
                msg["tool_calls"] = calls
            return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                                 "choices": [{"index": 0, "message": msg,
                                              "finish_reason": "tool_calls" if calls else "stop"}],
                                 "usage": usage})
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
        events: list = [(None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                                      "finish_reason": None}]})]
        for i in range(0, len(r.text), 5):
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"content": r.text[i:i + 5]},
                                                        "finish_reason": None}]}))
        if r.tool:
            args = json.dumps(r.tool[1])
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": r.tool[0], "arguments": ""}}]},
                "finish_reason": None}]}))
            for i in range(0, len(args), 4):
                events.append((None, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": args[i:i + 4]}}]}, "finish_reason": None}]}))
        events.append((None, {**base, "choices": [{"index": 0, "delta": {},
                                                    "finish_reason": "tool_calls" if r.tool else "stop"}]}))
        events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return _sse(events)

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def anthropic_app(script: Script) -> Starlette:
    async def messages(request: Request) -> Response:
        body = await request.json()
        r = script.next(body)
        if r.status != 200:
            return JSONResponse({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
                                status_code=r.status)
        content: list[dict] = []
        if r.text:
            content.append({"type": "text", "text": r.text})
        if r.tool:
            content.append({"type": "tool_use", "id": "toolu_1", "name": r.tool[0], "input": r.tool[1]})
        usage = {"input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens}
        msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": content,
               "stop_reason": "tool_use" if r.tool else "end_turn", "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return JSONResponse(msg)
        start = {**msg, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 0}}
        events: list = [("message_start", {"type": "message_start", "message": start})]
        index = 0
        if r.text:
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
            for i in range(0, len(r.text), 5):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                       "delta": {"type": "text_delta", "text": r.text[i:i + 5]}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        if r.tool:
            events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": r.tool[0], "input": {}}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(r.tool[1])}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": msg["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": r.completion_tokens}}))
        events.append(("message_stop", {"type": "message_stop"}))
        return _sse(events)

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def brave_app(results: list[dict], received: list[dict]) -> Starlette:
    async def search(request: Request) -> Response:
        received.append({"q": request.query_params.get("q"), "token": request.headers.get("x-subscription-token")})
        return JSONResponse({"type": "search", "web": {"type": "search", "results": results}})

    return Starlette(routes=[Route("/res/v1/web/search", search)])


def pages_app(pages: dict[str, tuple[int, dict[str, str], bytes]]) -> Starlette:
    """path -> (status, headers, body); anything else 404."""
    async def page(request: Request) -> Response:
        status, headers, body = pages.get(request.url.path, (404, {}, b"not found"))
        return Response(body, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{path:path}", page)])


async def serve(app) -> HttpHost:
    host = HttpHost("wire-test", app, host="127.0.0.1", port=0, grace_seconds=0.5)
    await host.start()
    return host


def text(body: str) -> PlainTextResponse:
    return PlainTextResponse(body)
