"""Per-service broker users: each service connects to RabbitMQ as `givance-<service>`, allowed
to publish only its own routing keys (`<service>.*`) on the events exchange and to use only its
own queues; consumers refuse an event its publisher may not speak for.

Permissions of givance-<service> in the vhost (rabbitmqctl set_permissions / set_topic_permissions):
- configure: the events and dead-letter exchanges, its own queues `<service>.*`, server-named
  `amq.gen-*` and `amq_*` queues (the revocation broadcast's exclusive queue);
- write: the events exchange, the dead-letter exchange (a queue declared with it as its
  x-dead-letter-exchange needs that), the default exchange (a consumer's retry and dead-letter
  copies), its own queues;
- read: the events and dead-letter exchanges, its own queues;
- topic, on the events exchange: publish `^<service>\\.` only; bind any key.

A consumer accepts an event that came through the events exchange under its own type as routing
key (the topic permissions made sure its publisher may publish it; RabbitMQ also checks a
message's `user_id` against the connection's user, and the relay stamps every message with its
user, so a stamped publisher must be the service the type names). Anything that reached the
queue another way (the default exchange, which every service may write to for its own retries)
is accepted only from the consumer's own user (its retry copies) or the operator's (RABBITMQ_URL's
user: `chassis.dlq replay`): one service cannot smuggle an event into another's queue. Where no
per-service user is configured every service runs as the RABBITMQ_URL user (guest locally) and
that is all there is to check.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import quote, unquote, urlsplit, urlunsplit

USER_PREFIX = "givance-"


def service_user(service: str) -> str:
    return f"{USER_PREFIX}{service}"


def username(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).username or "guest")


def vhost(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def with_user(amqp_url: str, user: str, password: str) -> str:
    """The URL with another user and password (host, port, vhost and query kept)."""
    parts = urlsplit(amqp_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def permissions(service: str, exchange: str, dead_letter_exchange: str) -> tuple[str, str, str]:
    """(configure, write, read) regular expressions for givance-<service>."""
    own, ex, dlx = re.escape(service) + r"\..*", re.escape(exchange), re.escape(dead_letter_exchange)
    return (f"^({ex}|{dlx}|{own}|amq(\\.gen-|_).*)$",
            f"^({ex}|{dlx}|amq\\.default|{own}|amq(\\.gen-|_).*)$",
            f"^({ex}|{dlx}|{own}|amq(\\.gen-|_).*)$")


def topic_permissions(service: str) -> tuple[str, str]:
    """(write, read) on the events exchange: publish only the service's own routing keys."""
    return f"^{re.escape(service)}\\.", ".*"


def ensure_service_user(amqp_url: str, exchange: str, dead_letter_exchange: str, service: str,
                        password: str) -> bool:
    """Create or update givance-<service> in the URL's vhost with rabbitmqctl (the broker must be
    on this machine, or rabbitmqctl configured to reach it). Returns False when rabbitmqctl is
    not installed (then the operator creates the users; docs/operations.md shows how)."""
    if shutil.which("rabbitmqctl") is None:
        return False
    user, where = service_user(service), vhost(amqp_url)

    def ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, text=True)

    if ctl("add_user", user, password, check=False).returncode != 0:
        ctl("change_password", user, password)
    ctl("set_permissions", "-p", where, user, *permissions(service, exchange, dead_letter_exchange))
    ctl("set_topic_permissions", "-p", where, user, exchange, *topic_permissions(service))
    return True


def dev_passwords(services: list[str], environ: dict) -> list[str]:
    """Development runs (`make run` sets GIVANCE_DEV_BROKER_USERS=1): every service without a
    <SERVICE>_BROKER_PASSWORD gets the development one, `dev-<service>`, when the broker is local
    and rabbitmqctl is here to create its user. Sets them in `environ`; returns the services it set."""
    url = environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    local = (urlsplit(url).hostname or "127.0.0.1") in ("127.0.0.1", "localhost", "::1")
    if environ.get("GIVANCE_DEV_BROKER_USERS") != "1" or not local or shutil.which("rabbitmqctl") is None:
        return []
    set_now = []
    for service in services:
        name = f"{service.upper()}_BROKER_PASSWORD"
        if not environ.get(name):
            environ[name] = f"dev-{service}"
            set_now.append(service)
    return set_now


def refusal(*, publisher: str, exchange: str, routing_key: str, event_type: str, header_tenant: str,
            event_tenant: str, events_exchange: str, own_user: str, operator_user: str) -> str | None:
    """Why a consumer must refuse a message (None: it may handle it). `publisher` is the message's
    user_id, which the broker checked against the publishing connection (empty when unstamped).

    - Through the events exchange, the routing key must be the event's type: the broker's topic
      permissions then guarantee the publisher may publish that type (and a stamped publisher
      must be the service the type names).
    - Any other way in (the default exchange, a dead-letter exchange) is accepted only from this
      consumer's own user (its retry copies) or the operator's (replays), or from anyone when
      every service shares one user (no per-service users configured)."""
    if header_tenant and header_tenant != event_tenant:
        return f"the tenant header {header_tenant} differs from the event's tenant {event_tenant}"
    if publisher and publisher in (own_user, operator_user):
        return None
    if exchange == events_exchange:
        if routing_key != event_type:
            return f"published as {routing_key} but the event is a {event_type}"
        if publisher.startswith(USER_PREFIX) and not event_type.startswith(f"{publisher.removeprefix(USER_PREFIX)}."):
            return f"{publisher} may not publish {event_type}"
        return None
    if own_user == operator_user:
        return None
    return f"{event_type} came through {exchange or 'the default exchange'} from {publisher or 'an unknown user'}"
