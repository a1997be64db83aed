"""comms' figures: sending email through the whole path, and the click redirect.

    bench send_email: N emails/s ratio=R baseline=B sent=S
    bench track_click: N req/s ratio=R bare=B p99=P ms errors=E

send_email: SendMessage calls (a system template, rendered and queued), the send queue's worker
and its SMTP connections, to a mail catcher (aiosmtpd, its own process, keeping mail on disk),
timed from the first call until the catcher holds every message; set against aiosmtplib sending
the same number of equivalent messages (text and HTML) straight to the same catcher over as many
connections as comms keeps (COMMS_SMTP_CONNECTIONS), in the same run.
track_click: GET /c/<token> on comms' public HTTP (the token verified, the link read, the click
recorded and its event written through the outbox, a 302) against a bare Starlette handler
answering 302 on the same chassis HttpHost settings (bench.bare_http), by the same load client.

    python -m bench.comms      just these figures (starts the stack, seeds, measures, stops)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiosmtplib
import grpc
import uvloop
from givance.comms.v1 import (
    message_service_pb2,
    message_service_pb2_grpc,
    settings_pb2,
    settings_service_pb2,
    settings_service_pb2_grpc,
    template_pb2,
    template_service_pb2,
    template_service_pb2_grpc,
)
from google.protobuf import field_mask_pb2

from bench import seed
from bench.load import LoadResult, LoadSpec, run
from services.comms.domain.delivery import OutgoingEmail
from services.comms.providers.smtp import build_mime

EMAILS = 400
SMTP_CONNECTIONS = 4
MAIL_DIR = Path(__file__).resolve().parent.parent / "build" / "bench" / "mail"


def comms_env(smtp_port: int, http_port: int) -> dict[str, str]:
    return {"COMMS_SMTP_PORT": str(smtp_port), "COMMS_HTTP_PORT": str(http_port),
            "COMMS_PUBLIC_URL": f"http://127.0.0.1:{http_port}", "COMMS_MAIL_DIR": str(MAIL_DIR),
            "COMMS_SMTP_CONNECTIONS": str(SMTP_CONNECTIONS), "COMMS_SEND_BATCH": "100"}


def caught() -> int:
    return len(os.listdir(MAIL_DIR)) // 2  # <id>.eml and <id>.json


async def wait_caught(count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while caught() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the catcher holds {caught()} of {count} messages after {timeout:.0f}s")
        await asyncio.sleep(0.025)


async def prepare(comms: str, tenant: seed.Tenant) -> None:
    """No send-rate limit in the way; a newsletter template with a link for the clicks."""
    async with grpc.aio.insecure_channel(comms) as channel:
        await settings_service_pb2_grpc.SettingsServiceStub(channel).UpdateSendingSettings(
            settings_service_pb2.UpdateSendingSettingsRequest(
                settings=settings_pb2.SendingSettings(send_rate_per_minute=100_000, from_name="Bench Fund",
                                                      from_address="giving@bench.example"),
                update_mask=field_mask_pb2.FieldMask(paths=["send_rate_per_minute", "from_name", "from_address"])),
            metadata=tenant.metadata)
        await template_service_pb2_grpc.TemplateServiceStub(channel).CreateTemplate(
            template_service_pb2.CreateTemplateRequest(template=template_pb2.Template(
                name="bench-news", category="newsletters", subject="News",
                body_text="Read https://hope.example/story",
                body_html='<p><a href="https://hope.example/story">Read</a></p>')), metadata=tenant.metadata)


async def _send_all(comms: str, tenant: seed.Tenant, count: int, tag: str, concurrency: int = 32) -> None:
    async with grpc.aio.insecure_channel(comms) as channel:
        stub = message_service_pb2_grpc.MessageServiceStub(channel)
        todo = iter(range(count))

        async def worker() -> None:
            for i in todo:
                await stub.SendMessage(message_service_pb2.SendMessageRequest(
                    to_address=f"donor-{tag}-{i}@example.org", template_name="thank-you",
                    variables={"amount": "$25.00", "date": "2026-12-01"}), metadata=tenant.metadata)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def through_comms(comms: str, tenant: seed.Tenant, count: int, tag: str) -> float:
    before = caught()
    t0 = time.monotonic()
    await _send_all(comms, tenant, count, tag)
    queued = time.monotonic() - t0
    await wait_caught(before + count)
    elapsed = time.monotonic() - t0
    print(f"[comms] {count} queued in {queued:.1f}s, all caught after {elapsed:.1f}s", file=sys.stderr, flush=True)
    return count / elapsed


def _equivalent(i: int, tag: str) -> bytes:
    text = ("Dear friend,\n\nThank you for your gift of $25.00 on 2026-12-01. It makes our work possible.\n\n")
    html = ("<p>Dear friend,</p><p>Thank you for your gift of $25.00 on 2026-12-01. It makes our work "
            "possible.</p><p></p>")
    return build_mime(OutgoingEmail(sender="Bench Fund <giving@bench.example>", to=f"raw-{tag}-{i}@example.org",
                                    subject="Thank you, friend", text=text, html=html,
                                    message_id=f"<raw{tag}{i}@bench.example>",
                                    headers={"List-Unsubscribe": "<http://127.0.0.1/u/x>",
                                             "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}))


async def straight(smtp_port: int, count: int, tag: str) -> float:
    messages = [_equivalent(i, tag) for i in range(count)]  # built before the clock starts
    before = caught()
    t0 = time.monotonic()

    async def connection(part: list[bytes]) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False) as smtp:
            for raw in part:
                await smtp.sendmail("giving@bench.example", ["raw@example.org"], raw)

    await asyncio.gather(*(connection(messages[k::SMTP_CONNECTIONS]) for k in range(SMTP_CONNECTIONS)))
    await wait_caught(before + count)
    return count / (time.monotonic() - t0)


async def measure_send_email(comms: str, smtp_port: int, tenant: seed.Tenant, rounds: int, progress) -> str:
    await prepare(comms, tenant)
    await through_comms(comms, tenant, 40, "warm")  # connections, caches, the worker awake
    best_comms = best_raw = 0.0
    for round_no in range(1, rounds + 1):
        raw = await straight(smtp_port, EMAILS, f"r{round_no}")
        whole = await through_comms(comms, tenant, EMAILS, f"c{round_no}")
        progress(f"round {round_no}: send_email {whole:.0f}/s, aiosmtplib straight {raw:.0f}/s")
        best_comms, best_raw = max(best_comms, whole), max(best_raw, raw)
    return (f"bench send_email: {best_comms:.0f} emails/s ratio={best_comms / best_raw:.2f} "
            f"baseline={best_raw:.0f} sent={EMAILS}")


async def click_path(comms: str, tenant: seed.Tenant) -> str:
    before = caught()
    async with grpc.aio.insecure_channel(comms) as channel:
        await message_service_pb2_grpc.MessageServiceStub(channel).SendMessage(
            message_service_pb2.SendMessageRequest(to_address="clicker@example.org", template_name="bench-news"),
            metadata=tenant.metadata)
    await wait_caught(before + 1)
    newest = max(MAIL_DIR.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    html = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default).get_body(("html",))
    return re.search(r'href="https?://[^/"]+(/c/[^"]+)"', html.get_content()).group(1)


async def measure_track_click(comms: str, comms_http: str, bare_http: str, tenant: seed.Tenant, *, concurrency: int,
                              warmup: float, window: float, rounds: int, progress) -> str:
    path = (await click_path(comms, tenant)).encode()
    ua = [("user-agent", "Mozilla/5.0 (bench)")]
    targets = {
        "bare": LoadSpec(target=bare_http, method="GET /c/{token}", payloads=[path], metadata=ua,
                         concurrency=concurrency, warmup=warmup, window=window, protocol="http"),
        "click": LoadSpec(target=comms_http, method="GET /c/{token}", payloads=[path], metadata=ua,
                          concurrency=concurrency, warmup=warmup, window=window, protocol="http"),
    }
    best: dict[str, LoadResult] = {}
    for round_no in range(1, rounds + 1):
        for name, spec in targets.items():
            result = await run(spec)
            progress(f"round {round_no}: track_click {name} {result.rate:.0f} req/s"
                     + (f" errors {result.errors} {result.first_error}" if result.errors else ""))
            if name not in best or result.rate > best[name].rate:
                best[name] = result
    click, bare = best["click"], best["bare"]
    return (f"bench track_click: {click.rate:.0f} req/s ratio={click.rate / bare.rate:.2f} bare={bare.rate:.0f} "
            f"p99={click.p99_ms:.1f}ms errors={sum(click.errors.values())}")


async def wait_tcp(port: int, procs, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s") from None
            await asyncio.sleep(0.1)


def start_comms_helpers(procs, stack) -> tuple[int, int, int]:
    """The mail catcher and the bare HTTP baseline; returns (smtp, comms http, bare http) ports."""
    from bench.stack import free_ports

    smtp_port, http_port, bare_port = free_ports(3)
    MAIL_DIR.mkdir(parents=True, exist_ok=True)
    for old in MAIL_DIR.glob("*"):
        old.unlink() if old.is_file() else None
    procs.start("catcher", "services.comms.providers.catcher", str(smtp_port), str(MAIL_DIR), env=stack.env())
    procs.start("bare_http", "bench.bare_http", str(bare_port), env=stack.env())
    return smtp_port, http_port, bare_port


def main() -> None:
    from bench.__main__ import CONCURRENCY, DONORS, ROUNDS, WARMUP_SECONDS, WINDOW_SECONDS, progress, start_servers
    from bench.stack import Processes, recreate, stack_from_env, wait_healthy

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = stack_from_env()
    recreate(stack)
    procs = Processes()
    try:
        smtp_port, http_port, bare_port = start_comms_helpers(procs, stack)
        addrs = start_servers(procs, stack, extra={"comms": comms_env(smtp_port, http_port)})

        async def go() -> None:
            for service_address in addrs.services.values():
                await wait_healthy(service_address, procs, timeout=120.0)  # a loaded machine starts slowly
            for port in (smtp_port, bare_port, http_port):
                await wait_tcp(port, procs)
            tenant = await seed.seed(addrs.identity, addrs.crm, DONORS)
            print(await measure_send_email(addrs.services["comms"], smtp_port, tenant, ROUNDS, progress), flush=True)
            print(await measure_track_click(addrs.services["comms"], f"127.0.0.1:{http_port}",
                                            f"127.0.0.1:{bare_port}", tenant, concurrency=CONCURRENCY,
                                            warmup=WARMUP_SECONDS, window=WINDOW_SECONDS, rounds=ROUNDS,
                                            progress=progress), flush=True)
            procs.check_alive()

        uvloop.run(go())
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
