"""The client's address behind trusted proxies.

`x-forwarded-for` is honoured only when the gRPC peer is one of the operator's trusted proxies
(TRUSTED_PROXIES: addresses or networks, comma-separated; the gateway, the ingress). The
header is read from the right: each hop a trusted proxy appended is skipped, and the first
address that is not a trusted proxy is the client (the rightmost-untrusted rule; what a client
wrote itself further left is never believed). A malformed entry ends the walk at the last hop
known good. With no trusted proxies the peer is the client, whatever the header says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """'10.0.0.0/8, 192.168.1.7' -> networks (an address is its own /32 or /128)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(ip, networks: Iterable[Network]) -> bool:
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy and x-forwarded-for
    names who it forwarded for (rightmost untrusted hop)."""
    if not trusted or not forwarded_for or not _trusted(_address(peer), trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    client = peer
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            break  # malformed: believe nothing further left
        client = str(ip)
        if not _trusted(ip, trusted):
            break
    return client
