"""Where the test suite's PostgreSQL and RabbitMQ come from.

`choose_backend` decides (a pure function, unit-tested in tests/test_infra.py):

- `given`: DATABASE_URL or RABBITMQ_URL is set; the suite uses what it names.
- `local`: the default. The local servers answer on 127.0.0.1:5432/5672, or are installed
  and can be started (chassis' devservices does that), or nothing better is available (then
  devservices fails naming the server and how to start it).
- `containers`: neither URL is given, the local servers neither answer nor are installed,
  and a Docker engine answers: PostgreSQL and RabbitMQ are started with testcontainers for
  the session, so a contributor with only Docker can run `make test`.

GIVANCE_TEST_BACKEND=local|containers overrides the choice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from typing import Literal

Backend = Literal["given", "local", "containers"]

LOCAL_PORTS = {"PostgreSQL": 5432, "RabbitMQ": 5672}
POSTGRES_IMAGE = "postgres:16-alpine"
RABBITMQ_IMAGE = "rabbitmq:3.13-alpine"


def choose_backend(env: Mapping[str, str], *, local_answers: bool, local_installed: bool,
                   docker_usable: bool) -> Backend:
    """Which servers the suite runs against (see the module docstring)."""
    forced = env.get("GIVANCE_TEST_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("local", "containers"):
            raise ValueError(f"GIVANCE_TEST_BACKEND={forced!r}: expected local or containers")
        return forced  # type: ignore[return-value]
    if env.get("DATABASE_URL") or env.get("RABBITMQ_URL"):
        return "given"
    if local_answers or local_installed:
        return "local"
    return "containers" if docker_usable else "local"


# -- the facts choose_backend is given ----------------------------------------------------


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def local_answers() -> bool:
    return all(_answers(port) for port in LOCAL_PORTS.values())


def local_installed() -> bool:
    """Both servers are installed here, so devservices can start them."""
    has_postgres = bool(shutil.which("pg_ctlcluster")) or os.path.isdir("/etc/postgresql")
    return has_postgres and bool(shutil.which("rabbitmq-server"))


def docker_usable() -> bool:
    """A Docker engine answers (the docker SDK is a testcontainers dependency)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def detect(env: Mapping[str, str] = os.environ) -> Backend:
    """choose_backend on this machine's facts (Docker is asked only when it could matter)."""
    answers = local_answers()
    installed = not answers and local_installed()
    usable = not (answers or installed) and docker_usable()
    return choose_backend(env, local_answers=answers, local_installed=installed, docker_usable=usable)


# -- the containers -------------------------------------------------------------------------


@contextlib.contextmanager
def containers() -> Iterator[tuple[str, str]]:
    """Start PostgreSQL (trust auth, so the services' password-less roles can log in) and
    RabbitMQ; yield (DATABASE_URL, RABBITMQ_URL); remove both at the end."""
    try:
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.community.rabbitmq import RabbitMqContainer
    except ImportError:  # testcontainers before the community packages
        from testcontainers.postgres import PostgresContainer
        from testcontainers.rabbitmq import RabbitMqContainer

    postgres = PostgresContainer(POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres",
                                 driver=None).with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
    rabbitmq = RabbitMqContainer(RABBITMQ_IMAGE, username="guest", password="guest")
    with postgres, rabbitmq:
        database_url = postgres.get_connection_url()
        host, port = rabbitmq.get_container_host_ip(), rabbitmq.get_exposed_port(rabbitmq.port)
        yield database_url, f"amqp://guest:guest@{host}:{port}/"
