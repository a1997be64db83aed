"""Make sure PostgreSQL, RabbitMQ and Redis answer; start them when they are local and down.

    python -m tools.devservices

Exits non-zero naming the one it cannot reach and how to start it.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

from chassis.settings import ServiceSettings

LOCAL = {"127.0.0.1", "localhost", "::1"}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _start_postgres() -> None:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if versions:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)


def _start_rabbitmq() -> None:
    subprocess.run(["rabbitmq-server", "-detached"], check=False)


def _start_redis() -> None:
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1"], check=False, capture_output=True)


def ensure(name: str, url: str, default_port: int, start, hint: str, wait: float) -> bool:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    if _reachable(host, port):
        return True
    if host in LOCAL:
        print(f"devservices: {name} is down on {host}:{port}; starting it")
        try:
            start()
        except FileNotFoundError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _reachable(host, port):
                return True
            time.sleep(0.5)
    print(f"devservices: cannot reach {name} at {host}:{port}. Start it with: {hint}", file=sys.stderr)
    return False


def main() -> int:
    s = ServiceSettings()
    ok = ensure("PostgreSQL", s.database_url.replace("+asyncpg", ""), 5432, _start_postgres,
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
                "(or set DATABASE_URL)", 30)
    ok &= ensure("RabbitMQ", s.rabbitmq_url, 5672, _start_rabbitmq,
                 "rabbitmq-server -detached (or set RABBITMQ_URL)", 60)
    # The gateway's rate limits (shared by its replicas) live in Redis.
    ok &= ensure("Redis", os.environ.get("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379/0"), 6379, _start_redis,
                 "redis-server --daemonize yes (or set GATEWAY_REDIS_URL)", 15)
    if ok and _wait_rabbit_ready(s.rabbitmq_url):
        return 0
    return 0 if ok else 1


def _wait_rabbit_ready(url: str) -> bool:
    """The port opens before the broker accepts AMQP; wait for a real handshake."""
    import asyncio

    import aio_pika

    async def probe() -> bool:
        for _ in range(60):
            try:
                conn = await aio_pika.connect(url, timeout=2)
                await conn.close()
                return True
            except Exception:  # noqa: BLE001
                await asyncio.sleep(0.5)
        return False

    return asyncio.run(probe())


if __name__ == "__main__":
    sys.exit(main())
