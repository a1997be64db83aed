"""Dead letters: list, show and replay what a consumer could not handle.

    python -m chassis.dlq list QUEUE              every message in QUEUE.dlq, one line each
    python -m chassis.dlq show QUEUE MESSAGE_ID   one message: headers, envelope, payload as JSON
    python -m chassis.dlq replay QUEUE [MESSAGE_ID ...] [--all]
                                                  back to QUEUE with a fresh attempt count

QUEUE is the consumer's queue (`crm.journey-setup`), not the `.dlq` itself. Reading never
consumes: messages are fetched unacknowledged and go back to the DLQ when the channel closes.
A replayed message is published to QUEUE with publisher confirms before its dead copy is acked,
so a crash in between leaves it in both places (the consumer's inbox makes that harmless),
never in neither. Uses RABBITMQ_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf import json_format

from chassis import broker, events
from chassis.settings import ServiceSettings

ERROR_HEADER = "x-givance-error"


@dataclass
class DeadLetter:
    message_id: str
    type: str
    tenant: str
    attempts: int
    error: str
    body: bytes = field(repr=False)
    headers: dict

    def envelope_json(self) -> dict:
        """The envelope with its payload decoded, or the raw size if it is not an envelope."""
        _load_event_types()
        try:
            env = events.parse(self.body)
        except Exception as exc:  # noqa: BLE001 - an undecodable body is a reason it is here
            return {"undecodable": str(exc), "bytes": len(self.body)}
        try:
            return json_format.MessageToDict(env, preserving_proto_field_name=True)
        except (TypeError, KeyError, json_format.Error):  # a payload type this process does not know
            payload = env.payload
            env.ClearField("payload")
            out = json_format.MessageToDict(env, preserving_proto_field_name=True)
            out["payload"] = {"@type": payload.type_url, "bytes_base64": base64.b64encode(payload.value).decode()}
            return out


def _load_event_types() -> None:
    """Register every event payload type, so an Any payload can be shown as JSON."""
    package = importlib.import_module("givance.events.v1")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"givance.events.v1.{info.name}")
    importlib.import_module("google.protobuf.wrappers_pb2")


def _dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})
    return DeadLetter(
        message_id=message.message_id or "", type=message.type or "",
        tenant=str(headers.get(events.TENANT_HEADER, "")), attempts=int(headers.get(events.ATTEMPTS_HEADER, 0) or 0),
        error=str(headers.get(ERROR_HEADER, "")), body=message.body, headers=headers)


async def _fetch_all(channel: aio_pika.abc.AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
    out: list[AbstractIncomingMessage] = []
    for _ in range(dlq.declaration_result.message_count):
        message = await dlq.get(no_ack=False, fail=False)
        if message is None:
            break
        out.append(message)
    return out


async def dead_letters(amqp_url: str, queue: str) -> list[DeadLetter]:
    """What QUEUE.dlq holds, oldest first; nothing is consumed."""
    conn = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await conn.channel()
        return [_dead_letter(m) for m in await _fetch_all(channel, queue)]
    finally:
        await conn.close()  # unacked: every message goes back to the DLQ


async def replay(amqp_url: str, queue: str, message_ids: Sequence[str] | None = None) -> list[str]:
    """Move the named dead letters (all when None) back to QUEUE with a fresh attempt count."""
    conn = await aio_pika.connect(amqp_url, timeout=10)
    replayed: list[str] = []
    try:
        channel = await conn.channel(publisher_confirms=True)
        wanted = set(message_ids) if message_ids is not None else None
        for message in await _fetch_all(channel, queue):
            if wanted is not None and message.message_id not in wanted:
                continue
            headers = {k: v for k, v in (message.headers or {}).items()
                       if k not in (events.ATTEMPTS_HEADER, ERROR_HEADER)}
            headers["x-givance-replayed"] = 1
            copy = aio_pika.Message(body=message.body, headers=headers, message_id=message.message_id,
                                    type=message.type, content_type=message.content_type,
                                    user_id=broker.username(amqp_url),  # the operator's: consumers accept it
                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(copy, routing_key=queue)  # confirmed
            await message.ack()
            replayed.append(message.message_id or "")
    finally:
        await conn.close()
    return replayed


def _line(d: DeadLetter) -> str:
    return f"{d.message_id}  {d.type or '-'}  tenant={d.tenant or '-'}  attempts={d.attempts}  {d.error}"


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chassis.dlq", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the dead letters of QUEUE").add_argument("queue")
    show = sub.add_parser("show", help="one dead letter in full")
    show.add_argument("queue")
    show.add_argument("message_id")
    again = sub.add_parser("replay", help="send dead letters back to QUEUE")
    again.add_argument("queue")
    again.add_argument("message_ids", nargs="*")
    again.add_argument("--all", action="store_true", help="every dead letter of QUEUE")
    args = parser.parse_args(argv)
    url = ServiceSettings().rabbitmq_url
    if args.command == "list":
        letters = await dead_letters(url, args.queue)
        for d in letters:
            print(_line(d))
        print(f"{len(letters)} dead letter(s) in {args.queue}.dlq", file=sys.stderr)
        return 0
    if args.command == "show":
        for d in await dead_letters(url, args.queue):
            if d.message_id == args.message_id:
                print(json.dumps({"message_id": d.message_id, "type": d.type, "tenant": d.tenant,
                                  "attempts": d.attempts, "error": d.error, "envelope": d.envelope_json()},
                                 indent=2, default=str))
                return 0
        print(f"no dead letter {args.message_id} in {args.queue}.dlq", file=sys.stderr)
        return 1
    if not args.all and not args.message_ids:
        parser.error("replay needs message ids or --all")
    done = await replay(url, args.queue, None if args.all else args.message_ids)
    print(f"replayed {len(done)} message(s) to {args.queue}", file=sys.stderr)
    return 0


def main() -> None:
    sys.exit(asyncio.run(_main(sys.argv[1:])))


if __name__ == "__main__":
    main()
