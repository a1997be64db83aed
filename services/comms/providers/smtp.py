"""Email delivery: the provider interface and its SMTP implementation (aiosmtplib).

The SMTP provider keeps up to `connections` connections open and reuses them (a connection
found closed is reopened once), speaks STARTTLS or implicit TLS with authentication when
configured, builds a multipart/alternative message (text and HTML, attachments mixed in) and
signs it with DKIM (dkimpy) when the organization has a key. Failures come back classified:
TransientFailure (4xx, timeouts, connection trouble: retry later) or PermanentFailure (5xx:
a bounce).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import uuid
from email._policybase import Compat32
from email.charset import QP, Charset
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, getaddresses
from typing import Protocol

import aiosmtplib
import dkim

from services.comms.domain.delivery import OutgoingEmail, PermanentFailure, TransientFailure, envelope_address

log = logging.getLogger(__name__)

DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version",
                b"content-type", b"list-unsubscribe", b"list-unsubscribe-post"]


class EmailProvider(Protocol):
    async def send(self, email: OutgoingEmail) -> None: ...

    async def close(self) -> None: ...


class _Wire(Compat32):
    """compat32 with lines folded only past RFC 5322's 998, where a header that needs no folding
    or encoding (printable ASCII, short enough: nearly all of them) is written as it is, instead
    of through the Header folding machinery, which gives the same bytes for it at many times the cost."""

    def fold_binary(self, name, value):
        if isinstance(value, str) and value.isascii() and value.isprintable() and len(name) + len(value) < 996:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WIRE = _Wire(max_line_length=998)
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP
_ASCII = Charset("us-ascii")  # 7bit: no transfer encoding to compute
_LINE_MAX = 998
_LINES = re.compile(r"\r\n|\r|\n")


def _text(content: str, subtype: str) -> MIMEText:
    """A text part: 7bit when ASCII in lines RFC 5322 allows, else quoted-printable UTF-8."""
    plain = content.isascii() and all(len(line) <= _LINE_MAX for line in _LINES.split(content))
    return MIMEText(content, subtype, _ASCII if plain else _UTF8_QP)


def _boundary(*parts: str) -> str | None:
    """A fresh multipart boundary (None: let the generator make one) that no part contains."""
    boundary = f"=_givance_{uuid.uuid4().hex}"
    return None if any(boundary in p for p in parts) else boundary


def _header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def _address(value: str) -> str:
    name, addr = getaddresses([value])[0]
    return formataddr((name, addr), charset="utf-8") if name else addr


def build_mime(email: OutgoingEmail) -> bytes:
    """The message as it goes on the wire (CRLF line ends), DKIM-signed when a key is given.

    Built with the email package's MIME classes (compat32): several times cheaper per message
    than EmailMessage's content manager, which the send path would pay for every email."""
    body: MIMEMultipart | MIMEText = _text(email.text, "plain")
    if email.html:
        body = MIMEMultipart("alternative", _boundary(email.text, email.html),
                             _subparts=[body, _text(email.html, "html")])
    if email.attachments:
        parts = [body]
        for name, mime_type, content in email.attachments:
            maintype, _, subtype = mime_type.partition("/")
            part = MIMEApplication(content, subtype) if maintype == "application" else MIMEText(
                content.decode(errors="replace"), subtype)
            part.add_header("Content-Disposition", "attachment", filename=name)
            parts.append(part)
        body = MIMEMultipart("mixed", _subparts=parts)  # the generator checks its boundary against the attachments
    msg = body
    msg["From"] = _address(email.sender)
    msg["To"] = _address(email.to)
    msg["Subject"] = _header(email.subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = email.message_id
    if email.reply_to:
        msg["Reply-To"] = _address(email.reply_to)
    for name, value in email.headers.items():
        msg[name] = value
    # Headers folded only past RFC 5322's 998 (a long Message-ID stays on its line).
    raw = msg.as_bytes(policy=_WIRE).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if email.dkim is not None:
        present = [h for h in DKIM_HEADERS if msg.get(h.decode()) is not None]
        signature = dkim.sign(raw, email.dkim.selector.encode(), email.dkim.domain.encode(),
                              email.dkim.private_key_pem, include_headers=present)
        raw = signature + raw
    return raw


class SmtpProvider:
    def __init__(self, host: str, port: int, *, username: str = "", password: str = "", security: str = "none",
                 timeout: float = 10.0, connections: int = 4, tls_context: ssl.SSLContext | None = None):
        if security not in ("none", "starttls", "tls"):
            raise ValueError("smtp security must be none, starttls or tls")
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.security, self.timeout = security, timeout
        self.tls_context = tls_context
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(connections)

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout,
            use_tls=self.security == "tls", start_tls=True if self.security == "starttls" else False,
            username=self.username or None, password=self.password or None, tls_context=self.tls_context)

    async def send(self, email: OutgoingEmail) -> None:
        raw = build_mime(email)
        sender = envelope_address(email.sender)
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else None
            for attempt in (1, 2):
                try:
                    if client is None or not client.is_connected:
                        client = self._client()
                        await client.connect()
                    await client.sendmail(sender, [email.to], raw)
                    self._idle.put_nowait(client)
                    return
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    await self._keep(client)
                    codes = [r.code for r in exc.recipients]
                    detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
                    if all(400 <= c < 500 for c in codes):
                        raise TransientFailure(detail) from None
                    raise PermanentFailure(detail) from None
                except aiosmtplib.SMTPResponseException as exc:
                    await self._keep(client)
                    if 400 <= exc.code < 500:
                        raise TransientFailure(f"{exc.code} {exc.message}") from None
                    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPConnectResponseError):
                        raise TransientFailure(f"{exc.code} {exc.message}") from None  # our side: retry
                    raise PermanentFailure(f"{exc.code} {exc.message}") from None
                except (TimeoutError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError,
                        aiosmtplib.SMTPTimeoutError, OSError) as exc:
                    await _close(client)
                    client = None
                    if attempt == 2:
                        raise TransientFailure(f"{type(exc).__name__}: {exc}") from None
                    # a reused connection the server had closed: one fresh try
                except aiosmtplib.SMTPException as exc:  # no AUTH offered, TLS refused: our configuration
                    await _close(client)
                    raise TransientFailure(f"{type(exc).__name__}: {exc}") from None

    async def _keep(self, client: aiosmtplib.SMTP) -> None:
        """After a refusal the session is still good once reset."""
        try:
            await client.rset()
            self._idle.put_nowait(client)
        except Exception:  # noqa: BLE001 - a broken session is dropped
            await _close(client)

    async def close(self) -> None:
        while not self._idle.empty():
            await _close(self._idle.get_nowait())


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        with contextlib.suppress(Exception):
            await client.quit()
    if client is not None:
        client.close()
