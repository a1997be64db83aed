"""A page fetcher that is safe to point at the internet.

- http and https only; no credentials in URLs; ports are whatever the URL says;
- the host is resolved first and EVERY address it resolves to must be public: private,
  loopback, link-local, multicast, reserved and unspecified addresses are refused (the cloud
  metadata address 169.254.169.254 among them); the request then goes to the address that was
  checked (Host header and TLS server name kept), so a second DNS answer cannot swap it;
- redirects are followed by hand, each new location checked the same way, at most N of them;
- a time limit for the whole fetch and a size limit on the body (read as a stream);
- robots.txt honoured for our user agent (a missing robots.txt allows everything);
- only HTML and plain text; the main text is extracted with trafilatura.

`loopback_ports` exists for tests only (AI_FETCH_TEST_LOOPBACK_PORTS): the loopback ports of
local test servers it may reach; any other loopback address or port (a redirect to
127.0.0.1:<another port>, say) is refused as in production, and private and link-local
networks never are allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

USER_AGENT = "GivanceResearchBot/1.0 (+https://givance.org/bot)"


class FetchRefused(Exception):
    """The URL may not be fetched (scheme, address, robots.txt, size, type, too many redirects)."""


@dataclass(frozen=True)
class Page:
    url: str  # after redirects
    title: str
    text: str
    truncated: bool


class SafeFetcher:
    def __init__(self, *, timeout: float = 10.0, max_bytes: int = 2_000_000, max_redirects: int = 5,
                 loopback_ports: frozenset[int] = frozenset(), user_agent: str = USER_AGENT):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.loopback_ports = loopback_ports
        self.user_agent = user_agent
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}

    async def fetch(self, url: str) -> Page:
        try:
            return await asyncio.wait_for(self._fetch(url), self.timeout)
        except TimeoutError:
            raise FetchRefused(f"{url}: took longer than {self.timeout:g}s") from None

    async def _fetch(self, url: str) -> Page:
        current = url
        for _ in range(self.max_redirects + 1):
            await self._check_robots(current)
            status, headers, body, truncated = await self._get(current)
            if status in (301, 302, 303, 307, 308) and headers.get("location"):
                current = urljoin(current, headers["location"])
                continue
            if status != 200:
                raise FetchRefused(f"{current}: HTTP {status}")
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in ("text/html", "application/xhtml+xml", "text/plain"):
                raise FetchRefused(f"{current}: content type {ctype or 'unknown'} is not a page")
            html = body.decode(_charset(headers.get("content-type", "")), errors="replace")
            if ctype == "text/plain":
                return Page(current, "", html, truncated)
            title, text = await asyncio.to_thread(extract, html)
            return Page(current, title, text, truncated)
        raise FetchRefused(f"{url}: more than {self.max_redirects} redirects")

    async def _check_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        parser = self._robots.get(origin)
        if parser is None:
            parser = urllib.robotparser.RobotFileParser()
            try:
                status, _, body, _ = await self._get(origin + "/robots.txt", limit=200_000)
            except FetchRefused:
                raise
            except httpx.HTTPError:
                status, body = 404, b""
            if status == 200:
                parser.parse(body.decode("utf-8", errors="replace").splitlines())
            elif status in (401, 403):
                parser.disallow_all = True
            else:
                parser.allow_all = True
            self._robots[origin] = parser
        if not parser.can_fetch(self.user_agent, url):
            raise FetchRefused(f"{url}: disallowed by robots.txt")

    async def _get(self, url: str, limit: int | None = None) -> tuple[int, dict[str, str], bytes, bool]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"{url}: only http and https may be fetched")
        if parts.username or parts.password:
            raise FetchRefused(f"{url}: credentials in URLs are refused")
        host = parts.hostname
        if not host:
            raise FetchRefused(f"{url}: no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self.resolve(host, port)
        # Connect to the address that was checked; the Host header and TLS name stay the host's.
        ip_host = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{ip_host}:{port}", parts.path or "/", parts.query, ""))
        limit = limit or self.max_bytes
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": self.user_agent,
                   "Accept": "text/html,text/plain;q=0.9"}
        async with httpx.AsyncClient(follow_redirects=False, timeout=self.timeout, trust_env=False) as client:
            request = client.build_request("GET", pinned, headers=headers,
                                           extensions={"sni_hostname": host} if parts.scheme == "https" else {})
            resp = await client.send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in resp.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= limit:
                        truncated = True
                        break
                body = b"".join(chunks)[:limit]
            finally:
                await resp.aclose()
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, body, truncated

    async def resolve(self, host: str, port: int) -> str:
        """The first address of `host`, once every address it resolves to is allowed."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchRefused(f"{host}: cannot be resolved ({exc})") from None
        addresses = [info[4][0] for info in infos]
        if not addresses:
            raise FetchRefused(f"{host}: no address")
        for a in addresses:
            if not self.allowed(a, port):
                raise FetchRefused(f"{host}: resolves to {a}, which is not a public address")
        return addresses[0]

    def allowed(self, address: str, port: int) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return port in self.loopback_ports
        return not (ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
                    or ip.is_unspecified or not ip.is_global)


def extract(html: str) -> tuple[str, str]:
    """(title, main text) of an HTML page (trafilatura; the whole text when it finds no article)."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, include_comments=False, include_tables=False, with_metadata=True)
    title = ""
    text = ""
    if doc is not None:
        title = (getattr(doc, "title", None) or "") if not isinstance(doc, dict) else (doc.get("title") or "")
        text = (getattr(doc, "text", None) or "") if not isinstance(doc, dict) else (doc.get("text") or "")
    if not text:
        text = trafilatura.html2txt(html) or ""
    return title, text


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            try:
                "".encode(value.strip('"'))
                return value.strip('"')
            except LookupError:
                break
    return "utf-8"
