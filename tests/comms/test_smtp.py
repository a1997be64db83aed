"""The SMTP provider against a real SMTP server (aiosmtpd, in-process): STARTTLS and implicit TLS
with authentication, connection reuse, the MIME that arrives, DKIM that dkimpy verifies, and
how refusals are classified."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import ssl

import dkim
import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from services.comms.domain.delivery import Dkim, OutgoingEmail, PermanentFailure, TransientFailure
from services.comms.providers.catcher import CatchingHandler, list_mail, raw_mail
from services.comms.providers.smtp import SmtpProvider, build_mime


def _self_signed(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


class Server:
    """An aiosmtpd server that counts connections and checks a login."""

    def __init__(self, folder, *, starttls: ssl.SSLContext | None = None, implicit: ssl.SSLContext | None = None):
        self.handler = CatchingHandler(folder)
        self.connections = 0
        self.logins: list[str] = []
        self.starttls, self.implicit = starttls, implicit
        self.server = None

    def _auth(self, server, session, envelope, mechanism, data) -> AuthResult:
        ok = data.login == b"mailer" and data.password == b"s3cret"
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def _protocol(self):
        self.connections += 1
        return SMTP(self.handler, hostname="test", tls_context=self.starttls,
                    require_starttls=self.starttls is not None, authenticator=self._auth, auth_required=True,
                    auth_require_tls=self.implicit is None)  # implicit TLS: the whole session is TLS

    async def start(self) -> int:
        self.server = await asyncio.get_running_loop().create_server(self._protocol, "127.0.0.1", 0,
                                                                     ssl=self.implicit)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


def _email(to="donor@example.org", **kw) -> OutgoingEmail:
    kw.setdefault("html", "<p>Thank <b>you</b></p>")
    return OutgoingEmail(sender="Hope Fund <giving@hope.example>", to=to, subject="Thank you, Ada",
                         text="Thank you", message_id="<m1@hope.example>", reply_to="office@hope.example", **kw)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_tls_and_login_then_the_connection_is_reused(tmp_path, mode):
    server_ctx, client_ctx = _self_signed(tmp_path)
    srv = Server(tmp_path / "mail", starttls=server_ctx if mode == "starttls" else None,
                 implicit=server_ctx if mode == "tls" else None)
    port = await srv.start()
    provider = SmtpProvider("localhost", port, username="mailer", password="s3cret", security=mode,
                            connections=1, tls_context=client_ctx)
    try:
        for i in range(3):
            await provider.send(_email(to=f"donor{i}@example.org"))
        assert srv.connections == 1 and srv.logins == ["mailer"]
        assert [m["rcpt_tos"] for m in list_mail(tmp_path / "mail")] == [[f"donor{i}@example.org"] for i in range(3)]
    finally:
        await provider.close()
        await srv.stop()


async def test_a_server_that_dropped_the_connection_gets_a_fresh_one(tmp_path):
    srv = Server(tmp_path / "mail")
    srv._protocol = lambda: (setattr(srv, "connections", srv.connections + 1)
                             or SMTP(srv.handler, hostname="test"))
    port = await srv.start()
    provider = SmtpProvider("127.0.0.1", port, connections=1)
    try:
        await provider.send(_email())
        idle = provider._idle.get_nowait()
        idle.close()  # the server (or the network) closed it while idle
        provider._idle.put_nowait(idle)
        await provider.send(_email(to="second@example.org"))
        assert srv.connections == 2 and len(list_mail(tmp_path / "mail")) == 2
    finally:
        await provider.close()
        await srv.stop()


async def test_refusals_are_permanent_for_5xx_and_transient_for_4xx_and_no_server(tmp_path):
    srv = Server(tmp_path / "mail")
    srv._protocol = lambda: SMTP(srv.handler, hostname="test")
    port = await srv.start()
    provider = SmtpProvider("127.0.0.1", port)
    try:
        with pytest.raises(PermanentFailure, match="550"):
            await provider.send(_email(to="bounce@example.org"))
        with pytest.raises(TransientFailure, match="451"):
            await provider.send(_email(to="defer@example.org"))
        await provider.send(_email(to="fine@example.org"))  # the session survives refusals
        assert [m["rcpt_tos"] for m in list_mail(tmp_path / "mail")] == [["fine@example.org"]]
    finally:
        await provider.close()
        await srv.stop()
    with pytest.raises(TransientFailure):
        await SmtpProvider("127.0.0.1", port, timeout=2).send(_email())


def _dkim_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dkim_dns(record: bytes, name: bytes = b"s1._domainkey.hope.example."):
    return lambda qname, timeout=5: record if qname == name else None


def test_mime_has_both_parts_headers_an_attachment_and_a_dkim_signature_that_verifies():
    pem, record = _dkim_key()
    raw = build_mime(_email(headers={"List-Unsubscribe": "<https://x.example/u/t>",
                                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
                            attachments=[("receipt.pdf", "application/pdf", b"%PDF-1.4 x")],
                            dkim=Dkim("hope.example", "s1", pem)))
    assert dkim.verify(raw, dnsfunc=dkim_dns(record))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "Hope Fund <giving@hope.example>" and msg["Reply-To"] == "office@hope.example"
    assert msg["Message-ID"] == "<m1@hope.example>" and msg["Date"]
    sig = msg["DKIM-Signature"]
    assert "d=hope.example" in sig and "s=s1" in sig and "list-unsubscribe" in sig.lower()
    assert msg.get_body(("plain",)).get_content().strip() == "Thank you"
    assert "<b>you</b>" in msg.get_body(("html",)).get_content()
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "receipt.pdf" and att.get_content() == b"%PDF-1.4 x"
    # any change after signing fails verification
    assert not dkim.verify(raw.replace(b"Thank you, Ada", b"Thank you, Bob"), dnsfunc=dkim_dns(record))


def test_caught_mail_is_read_back_by_id(tmp_path):
    assert raw_mail(tmp_path, "") is None and list_mail(tmp_path) == []
