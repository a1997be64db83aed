"""The development mail catcher: an SMTP server (aiosmtpd) that keeps every message it receives
on disk, one `<id>.eml` beside its `<id>.json` (envelope, time), and reads them back for the
CLI (`givance mail list`, `givance mail show ID`).

`make run` starts it on 127.0.0.1:1025 (COMMS_MAIL_CATCHER=1), and comms' development default
sends to it. To try bounces without a real provider: an address whose local part starts with
`bounce` is refused for good (550), one starting with `defer` for now (451). Given
`on_unsubscribe` (comms' own catcher), a message to `unsubscribe+<token>@...` is also handed to
comms, as its inbound SMTP server would (providers/inbound.py).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.comms.providers.inbound import OnUnsubscribe, deliver_unsubscribes
from services.comms.providers.smtp_listener import SmtpListener

MAX_MESSAGE_BYTES = 25 * 1024 * 1024


class CatchingHandler:
    def __init__(self, directory: str | Path, on_unsubscribe: OnUnsubscribe | None = None):
        self.on_unsubscribe = on_unsubscribe  # mail to unsubscribe+<token>@ goes to comms too
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.received = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        local = address.partition("@")[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 No such user here (the catcher refuses bounce* addresses)"
        if local.startswith("defer"):
            return "451 4.3.0 Try again later (the catcher defers defer* addresses)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail_id = f"{time.time_ns():x}-{uuid.uuid4().hex[:6]}"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        tmp = self.directory / f".{mail_id}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, self.directory / f"{mail_id}.eml")
        meta = {"id": mail_id, "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                "received": time.time()}
        (self.directory / f"{mail_id}.json").write_text(json.dumps(meta))
        self.received += 1
        if self.on_unsubscribe is not None:
            await deliver_unsubscribes(self.on_unsubscribe, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailCatcher(SmtpListener):
    """The catcher as a worker (run/stop) on host:port (0: an ephemeral port, `port` after start)."""

    def __init__(self, directory: str | Path, host: str = "127.0.0.1", port: int = 1025,
                 on_unsubscribe: OnUnsubscribe | None = None):
        super().__init__(CatchingHandler(directory, on_unsubscribe), host, port, hostname="givance-mail-catcher",
                         max_message_bytes=MAX_MESSAGE_BYTES)


def list_mail(directory: str | Path) -> list[dict[str, Any]]:
    """Every caught message, oldest first: id, from, to, subject, received."""
    out = []
    for meta_path in sorted(Path(directory).glob("*.json")):
        meta = json.loads(meta_path.read_text())
        eml = meta_path.with_suffix(".eml")
        if not eml.exists():
            continue
        with eml.open("rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        out.append({**meta, "from": str(msg["From"] or ""), "to": str(msg["To"] or ""),
                    "subject": str(msg["Subject"] or "")})
    return out


def read_mail(directory: str | Path, mail_id: str) -> email.message.EmailMessage | None:
    """One caught message, parsed (by its id, or a unique prefix of it)."""
    matches = [p for p in Path(directory).glob("*.eml") if p.stem.startswith(mail_id)] if mail_id else []
    if len(matches) != 1:
        return None
    return email.message_from_bytes(matches[0].read_bytes(), policy=email.policy.default)


def raw_mail(directory: str | Path, mail_id: str) -> bytes | None:
    matches = [p for p in Path(directory).glob("*.eml") if p.stem.startswith(mail_id)] if mail_id else []
    return matches[0].read_bytes() if len(matches) == 1 else None


def main(argv: list[str]) -> None:
    """python -m services.comms.providers.catcher [PORT [DIR]]: the catcher alone (bench, tools)."""
    import signal

    port = int(argv[0]) if argv else 1025
    folder = argv[1] if len(argv) > 1 else "var/mail"

    async def serve() -> None:
        catcher = MailCatcher(folder, "127.0.0.1", port)
        await catcher.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await catcher.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
