"""What ai's writers exchange with a language model, provider-neutral (no SDK types here).

A provider (services/ai/providers) turns these into its wire format and back: OpenAI-compatible
Chat Completions, Anthropic Messages, or none at all (the built-in composer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BUILTIN_MODEL = "builtin-composer"


@dataclass(frozen=True)
class Tool:
    """A function the model may ask to call: a name, what it does, JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One turn: role "user" or "assistant" (the system prompt travels apart)."""

    role: str
    content: str


@dataclass
class Completion:
    text: str
    model: str
    provider: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed text."""

    text: str


class ModelError(Exception):
    """The model could not be reached or answered with an error after the retries."""
