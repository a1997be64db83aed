"""Language models behind one interface: `complete` (one answer) and `stream` (text as it comes,
then the whole Completion). Two real implementations through the providers' official SDKs, each
pointed at a base URL, with the SDK's own timeouts and retries (429 and 5xx, with back-off):

- OpenAICompatible: Chat Completions (OpenAI, Azure, vLLM, Ollama, llama.cpp's server);
- AnthropicMessages: Anthropic's Messages API.

The offline default is no model at all: the built-in composer (services/ai/domain/composer.py);
`build` returns None for it and the writers use the composer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import anthropic
import openai

from services.ai.domain.models import Completion, Message, ModelError, TextDelta, Tool, ToolCall


class Model(Protocol):
    provider: str
    model: str

    async def complete(self, system: str, messages: Sequence[Message], *, tools: Sequence[Tool] = (),
                       max_tokens: int = 1024) -> Completion: ...

    def stream(self, system: str, messages: Sequence[Message], *, tools: Sequence[Tool] = (),
               max_tokens: int = 1024) -> AsyncIterator[TextDelta | Completion]: ...


def build(provider: str, *, base_url: str, model: str, api_key: str, timeout: float, max_retries: int) -> Model | None:
    """The organization's model, or None for the built-in composer."""
    if provider == "openai":
        return OpenAICompatible(base_url=base_url, model=model, api_key=api_key, timeout=timeout,
                                max_retries=max_retries)
    if provider == "anthropic":
        return AnthropicMessages(base_url=base_url, model=model, api_key=api_key, timeout=timeout,
                                 max_retries=max_retries)
    return None


class OpenAICompatible:
    provider = "openai-compatible"

    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float, max_retries: int):
        self.model = model or "gpt-4o-mini"
        # A local server (Ollama, llama.cpp) needs no key; the SDK insists on one.
        self.client = openai.AsyncOpenAI(api_key=api_key or "unused", base_url=base_url or None,
                                         timeout=timeout, max_retries=max_retries)

    def _request(self, system: str, messages: Sequence[Message], tools: Sequence[Tool], max_tokens: int) -> dict:
        body: dict = {
            "model": self.model, "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system}, *({"role": m.role, "content": m.content}
                                                                    for m in messages)],
        }
        if tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}} for t in tools]
        return body

    async def complete(self, system, messages, *, tools=(), max_tokens=1024) -> Completion:
        try:
            resp = await self.client.chat.completions.create(**self._request(system, messages, tools, max_tokens))
        except openai.OpenAIError as exc:
            raise ModelError(f"{self.provider} {self.model}: {exc}") from exc
        choice = resp.choices[0].message if resp.choices else None
        calls = [ToolCall(c.id, c.function.name, _arguments(c.function.arguments))
                 for c in (choice.tool_calls or []) if getattr(c, "function", None)] if choice else []
        usage = resp.usage
        return Completion(text=(choice.content or "") if choice else "", model=resp.model or self.model,
                          provider=self.provider, prompt_tokens=usage.prompt_tokens if usage else 0,
                          completion_tokens=usage.completion_tokens if usage else 0, tool_calls=calls)

    async def stream(self, system, messages, *, tools=(), max_tokens=1024) -> AsyncIterator[TextDelta | Completion]:
        text: list[str] = []
        calls: dict[int, dict] = {}
        prompt_tokens = completion_tokens = 0
        model = self.model
        try:
            chunks = await self.client.chat.completions.create(
                **self._request(system, messages, tools, max_tokens), stream=True,
                stream_options={"include_usage": True})
            async for chunk in chunks:
                model = chunk.model or model
                if chunk.usage:
                    prompt_tokens, completion_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    for tc in delta.tool_calls or []:
                        call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                        call["id"] = tc.id or call["id"]
                        if tc.function:
                            call["name"] += tc.function.name or ""
                            call["arguments"] += tc.function.arguments or ""
        except openai.OpenAIError as exc:
            raise ModelError(f"{self.provider} {self.model}: {exc}") from exc
        yield Completion(text="".join(text), model=model, provider=self.provider, prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens,
                         tool_calls=[ToolCall(c["id"], c["name"], _arguments(c["arguments"]))
                                     for _, c in sorted(calls.items())])


class AnthropicMessages:
    provider = "anthropic"

    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float, max_retries: int):
        self.model = model or "claude-sonnet-4-5"
        self.client = anthropic.AsyncAnthropic(api_key=api_key or "unused", base_url=base_url or None,
                                               timeout=timeout, max_retries=max_retries)

    def _request(self, system: str, messages: Sequence[Message], tools: Sequence[Tool], max_tokens: int) -> dict:
        body: dict = {"model": self.model, "max_tokens": max_tokens, "system": system,
                      "messages": [{"role": m.role, "content": m.content} for m in messages]}
        if tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                             for t in tools]
        return body

    def _completion(self, msg) -> Completion:
        text = "".join(b.text for b in msg.content if b.type == "text")
        calls = [ToolCall(b.id, b.name, dict(b.input) if isinstance(b.input, dict) else {})
                 for b in msg.content if b.type == "tool_use"]
        return Completion(text=text, model=msg.model or self.model, provider=self.provider,
                          prompt_tokens=msg.usage.input_tokens, completion_tokens=msg.usage.output_tokens,
                          tool_calls=calls)

    async def complete(self, system, messages, *, tools=(), max_tokens=1024) -> Completion:
        try:
            msg = await self.client.messages.create(**self._request(system, messages, tools, max_tokens))
        except anthropic.AnthropicError as exc:
            raise ModelError(f"{self.provider} {self.model}: {exc}") from exc
        return self._completion(msg)

    async def stream(self, system, messages, *, tools=(), max_tokens=1024) -> AsyncIterator[TextDelta | Completion]:
        try:
            async with self.client.messages.stream(**self._request(system, messages, tools, max_tokens)) as s:
                async for text in s.text_stream:
                    yield TextDelta(text)
                msg = await s.get_final_message()
        except anthropic.AnthropicError as exc:
            raise ModelError(f"{self.provider} {self.model}: {exc}") from exc
        yield self._completion(msg)


def _arguments(raw: str | None) -> dict:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
