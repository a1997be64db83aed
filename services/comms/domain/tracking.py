"""Tracking and unsubscribe tokens, and whether an open or click was a machine's.

A token is `<kid>.<payload>.<mac>`: the payload (base64url) names the organization, the
message and, for a click, the link row; the mac is HMAC-SHA256 over kid and payload under the
key `kid` names. Keys rotate: the first key signs, every listed key verifies. A token names
rows, never a URL, so a click can only go where the message's own link row says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

OPEN, CLICK, UNSUBSCRIBE = "o", "c", "u"
PREFERENCES, CONFIRM = "p", "k"  # the preference page; a double opt-in confirmation (names its message)
FORM_MAX_AGE_SECONDS = 24 * 3600
TOKEN_MAX = 300


@dataclass(frozen=True)
class TokenClaims:
    kind: str
    organization_id: uuid.UUID
    message_id: uuid.UUID
    link_id: uuid.UUID | None = None


class Signer:
    def __init__(self, spec: str):
        self._keys: dict[str, bytes] = {}
        self.primary = ""
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, _, b64 = part.partition(":")
            key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            if len(key) < 16 or not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", kid):
                raise ValueError(f"tracking key {kid!r}: an id of letters and digits and at least 16 bytes")
            self._keys[kid] = key
            self.primary = self.primary or kid
        if not self._keys:
            raise ValueError("no tracking keys configured")

    def _mac(self, kid: str, payload: str) -> str:
        digest = hmac.new(self._keys[kid], f"{kid}.{payload}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:20]).decode().rstrip("=")

    def sign(self, claims: TokenClaims) -> str:
        raw = claims.kind.encode() + claims.organization_id.bytes + claims.message_id.bytes
        if claims.link_id is not None:
            raw += claims.link_id.bytes
        payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return f"{self.primary}.{payload}.{self._mac(self.primary, payload)}"

    def verify(self, token: str, kind: str) -> TokenClaims | None:
        """The claims of a genuine token of this kind, or None (tampered, unknown key, malformed)."""
        if len(token) > TOKEN_MAX or token.count(".") != 2:
            return None
        kid, payload, mac = token.split(".")
        if kid not in self._keys or not hmac.compare_digest(mac, self._mac(kid, payload)):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except ValueError:
            return None
        if raw[:1].decode(errors="replace") != kind or len(raw) not in (33, 49):
            return None
        link = uuid.UUID(bytes=raw[33:49]) if len(raw) == 49 else None
        if (kind == CLICK) != (link is not None):
            return None
        return TokenClaims(kind, uuid.UUID(bytes=raw[1:17]), uuid.UUID(bytes=raw[17:33]), link)


    def form_token(self, token: str, now: float) -> str:
        """A page's form token (CSRF): bound to the page's own token and when it was served."""
        issued = str(int(now))
        mac = hmac.new(self._keys[self.primary], f"form.{token}.{issued}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{self.primary}.{issued}.{mac}"

    def form_token_ok(self, form: str, token: str, now: float) -> bool:
        kid, _, rest = (form or "").partition(".")
        issued, _, mac = rest.partition(".")
        if kid not in self._keys or not issued.isdigit() or not 0 <= now - int(issued) <= FORM_MAX_AGE_SECONDS:
            return False
        expected = hmac.new(self._keys[kid], f"form.{token}.{issued}".encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(mac, expected)

    def sign_address(self, claims: TokenClaims) -> str:
        """A token for an email address' local part (`unsubscribe+<token>@domain`): lowercase
        base32, so a server that folds the local part's case keeps it whole."""
        raw = claims.organization_id.bytes + claims.message_id.bytes
        mac = hmac.new(self._keys[self.primary], f"{self.primary}.{claims.kind}.".encode() + raw,
                       hashlib.sha256).digest()[:ADDRESS_MAC_BYTES]
        return f"{self.primary.lower()}.{base64.b32encode(raw + mac).decode().rstrip('=').lower()}"

    def verify_address(self, token: str, kind: str) -> TokenClaims | None:
        kid_given, _, b32 = token.strip().lower().partition(".")
        kid = next((k for k in self._keys if k.lower() == kid_given), None)
        if kid is None or len(b32) != ADDRESS_TOKEN_CHARS or not b32.isalnum():
            return None
        try:
            data = base64.b32decode(b32.upper() + "=" * (-len(b32) % 8))
        except ValueError:
            return None
        raw, mac = data[:32], data[32:]
        expected = hmac.new(self._keys[kid], f"{kid}.{kind}.".encode() + raw, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected[:ADDRESS_MAC_BYTES]):
            return None
        return TokenClaims(kind, uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:]))


ADDRESS_MAC_BYTES = 10
ADDRESS_TOKEN_CHARS = 68  # base32 of 42 bytes, unpadded

# User agents of link scanners, mail-privacy proxies and prefetchers (substrings, lowercase).
MACHINE_AGENTS = ("googleimageproxy", "yahoomailproxy", "bot", "crawler", "spider", "scanner", "barracuda",
                  "mimecast", "proofpoint", "safelinks", "symantec", "python-", "curl/", "wget/", "httpx",
                  "go-http-client", "headless", "preview")


def is_machine(user_agent: str, sent_at: datetime | None, now: datetime, quick_seconds: float) -> bool:
    """A known scanner or proxy, no user agent at all, or within seconds of sending."""
    ua = (user_agent or "").lower()
    if not ua or any(m in ua for m in MACHINE_AGENTS):
        return True
    return sent_at is not None and (now - sent_at).total_seconds() < quick_seconds


_HREF = re.compile(r'href="(https?://[^"]{1,2000})"', re.IGNORECASE)


def rewrite_links(html_body: str, track: Callable[[str], str | None]) -> str:
    """Every http(s) link of an HTML body through `track` (the destination, unescaped, in; the
    tracking URL or None to leave the link alone, out)."""

    def swap(m: re.Match) -> str:
        url = track(html.unescape(m.group(1)))
        return m.group(0) if url is None else f'href="{html.escape(url)}"'

    return _HREF.sub(swap, html_body)


def add_pixel(html_body: str, pixel_url: str) -> str:
    return add_footer(html_body, f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="" '
                                 'style="display:none">')


def add_footer(html_body: str, tag: str) -> str:
    """`tag` at the end of the body (before </body> when there is one)."""
    at = html_body.lower().rfind("</body>")
    return html_body[:at] + tag + html_body[at:] if at >= 0 else html_body + tag
