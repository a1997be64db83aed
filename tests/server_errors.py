"""A pytest plugin: a test fails if a server logged an error while it ran.

The services run in-process, so what they log at ERROR (an unhandled exception in an RPC, a
task that died, a context token reset in the wrong Context) is caught here and turned into a
test failure, rather than scrolling by unseen. A test that provokes such an error on purpose
(a poison message that is dead-lettered) says so with `@pytest.mark.server_errors("pattern")`,
naming what it expects; anything else it logs still fails it.
"""

from __future__ import annotations

import logging
import re

import pytest

# Loggers whose errors are the servers' own: ours, grpc's, asyncio's (tasks that died), aio-pika's.
WATCHED = ("chassis", "services", "grpc", "asyncio", "aio_pika", "aiormq")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in WATCHED:
            self.records.append(record)


_collector = _Collector()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "server_errors(*patterns): errors a server is expected to log in this test")
    logging.getLogger().addHandler(_collector)


def _describe(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    text = f"{record.name}: {message}"
    if record.exc_info and record.exc_info[1] is not None:
        text += f" [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
    return text


def pytest_runtest_setup(item: pytest.Item) -> None:
    _collector.records.clear()  # what a test logs is counted from its setup to the end of its call


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    marker = item.get_closest_marker("server_errors")
    allowed = [re.compile(p) for p in (marker.args if marker else ())]
    unexpected = [_describe(r) for r in _collector.records
                  if not any(p.search(_describe(r)) for p in allowed)]
    _collector.records.clear()
    if unexpected:
        pytest.fail("a server logged errors during this test:\n  " + "\n  ".join(unexpected[:10]), pytrace=False)
    return result
