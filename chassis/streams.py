"""Client streams that cannot hold a call open for ever.

A client that opens a client stream (an import) and then sends nothing keeps its call, its
handler and whatever the handler holds; `idle_limited` ends the stream with DEADLINE_EXCEEDED
(reason STREAM_IDLE) once no message came for `seconds` (setting `stream_idle_seconds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

from chassis.errors import DeadlineExceeded

T = TypeVar("T")


async def idle_limited(messages: AsyncIterable[T], seconds: float) -> AsyncIterator[T]:
    """`messages`, failing with DeadlineExceeded when the next one takes longer than `seconds`."""
    it = aiter(messages)
    while True:
        try:
            async with asyncio.timeout(seconds):  # a deadline on this task: no task per message
                item = await anext(it)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise DeadlineExceeded(f"no message from the client in {seconds:g} s; the stream is closed",
                                   reason="STREAM_IDLE") from None
        yield item
