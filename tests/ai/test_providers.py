"""The model providers, driven by the official SDKs against local servers speaking each wire
format: answers, SSE streams, tool calls, retries on 429 and 5xx, token usage."""

from __future__ import annotations

import pytest

from services.ai.domain.models import Completion, Message, ModelError, TextDelta, Tool
from services.ai.providers.models import AnthropicMessages, OpenAICompatible, build
from tests.ai.wire import Reply, Script, anthropic_app, openai_app, serve

LOOKUP = Tool("lookup_donor", "Find a donor by name", {"type": "object", "properties": {"name": {"type": "string"}},
                                                       "required": ["name"]})


@pytest.fixture
async def openai_server():
    script = Script()
    host = await serve(openai_app(script))
    yield script, f"http://127.0.0.1:{host.bound_port}/v1"
    await host.stop()


@pytest.fixture
async def anthropic_server():
    script = Script()
    host = await serve(anthropic_app(script))
    yield script, f"http://127.0.0.1:{host.bound_port}"
    await host.stop()


def _openai(url: str, retries: int = 2) -> OpenAICompatible:
    return OpenAICompatible(base_url=url, model="test-model", api_key="sk-test", timeout=5, max_retries=retries)


def _anthropic(url: str, retries: int = 2) -> AnthropicMessages:
    return AnthropicMessages(base_url=url, model="claude-test", api_key="ak-test", timeout=5, max_retries=retries)


async def _drain(stream) -> tuple[str, Completion]:
    pieces, final = [], None
    async for item in stream:
        if isinstance(item, TextDelta):
            pieces.append(item.text)
        else:
            final = item
    return "".join(pieces), final


async def test_openai_compatible_answers_with_usage_and_sends_the_system_prompt(openai_server):
    script, url = openai_server
    script.replies = [Reply(text="Hello Ada", prompt_tokens=20, completion_tokens=3)]
    c = await _openai(url).complete("be brief", [Message("user", "hi")])
    assert (c.text, c.model, c.provider, c.prompt_tokens, c.completion_tokens) == \
        ("Hello Ada", "test-model", "openai-compatible", 20, 3)
    assert script.received[0]["messages"][0] == {"role": "system", "content": "be brief"}
    assert "tools" not in script.received[0]


async def test_openai_compatible_tool_calls_plain_and_streamed(openai_server):
    script, url = openai_server
    script.replies = [Reply(tool=("lookup_donor", {"name": "Ada"})), Reply(text="Let me look", tool=(
        "lookup_donor", {"name": "Grace Hopper"}))]
    c = await _openai(url).complete("s", [Message("user", "who is Ada?")], tools=[LOOKUP])
    assert [(t.name, t.arguments) for t in c.tool_calls] == [("lookup_donor", {"name": "Ada"})]
    assert script.received[0]["tools"][0]["function"]["name"] == "lookup_donor"
    text, final = await _drain(_openai(url).stream("s", [Message("user", "who?")], tools=[LOOKUP]))
    assert text == "Let me look" and final.text == "Let me look"
    assert [(t.name, t.arguments) for t in final.tool_calls] == [("lookup_donor", {"name": "Grace Hopper"})]
    assert final.prompt_tokens == 11 and final.completion_tokens == 7  # the stream's usage chunk


async def test_openai_compatible_streams_text_in_pieces(openai_server):
    script, url = openai_server
    script.replies = [Reply(text="Dear Ada, thank you for your gift.")]
    pieces = []
    async for item in _openai(url).stream("s", [Message("user", "write")]):
        pieces.append(item)
    deltas = [p.text for p in pieces if isinstance(p, TextDelta)]
    assert len(deltas) > 3 and "".join(deltas) == "Dear Ada, thank you for your gift."
    assert isinstance(pieces[-1], Completion) and pieces[-1].text == "".join(deltas)


async def test_openai_compatible_retries_429_and_5xx_then_gives_up(openai_server):
    script, url = openai_server
    script.replies = [Reply(status=429), Reply(status=503), Reply(text="at last")]
    assert (await _openai(url, retries=2).complete("s", [Message("user", "x")])).text == "at last"
    assert len(script.received) == 3
    script.replies = [Reply(status=503), Reply(status=503)]
    with pytest.raises(ModelError):
        await _openai(url, retries=1).complete("s", [Message("user", "x")])


async def test_anthropic_messages_answers_tools_and_streams(anthropic_server):
    script, url = anthropic_server
    script.replies = [Reply(text="Hi there", prompt_tokens=30, completion_tokens=4),
                      Reply(text="Checking", tool=("lookup_donor", {"name": "Ada"})),
                      Reply(text="Dear Ada, thank you.", tool=("lookup_donor", {"name": "Ada L"}))]
    c = await _anthropic(url).complete("be kind", [Message("user", "hi")])
    assert (c.text, c.provider, c.prompt_tokens, c.completion_tokens) == ("Hi there", "anthropic", 30, 4)
    assert script.received[0]["system"] == "be kind"
    c = await _anthropic(url).complete("s", [Message("user", "who")], tools=[LOOKUP])
    assert [(t.name, t.arguments) for t in c.tool_calls] == [("lookup_donor", {"name": "Ada"})]
    assert script.received[1]["tools"][0]["input_schema"]["required"] == ["name"]
    text, final = await _drain(_anthropic(url).stream("s", [Message("user", "w")], tools=[LOOKUP]))
    assert text == "Dear Ada, thank you." and final.completion_tokens == 7
    assert [(t.name, t.arguments) for t in final.tool_calls] == [("lookup_donor", {"name": "Ada L"})]


async def test_anthropic_messages_retries_overloaded(anthropic_server):
    script, url = anthropic_server
    script.replies = [Reply(status=529), Reply(status=429), Reply(text="fine")]
    assert (await _anthropic(url).complete("s", [Message("user", "x")])).text == "fine"
    assert len(script.received) == 3


def test_the_builtin_composer_is_no_model():
    assert build("builtin", base_url="", model="", api_key="", timeout=1, max_retries=0) is None
    assert isinstance(build("openai", base_url="http://x/v1", model="m", api_key="", timeout=1, max_retries=0),
                      OpenAICompatible)
    assert isinstance(build("anthropic", base_url="", model="", api_key="k", timeout=1, max_retries=0),
                      AnthropicMessages)
