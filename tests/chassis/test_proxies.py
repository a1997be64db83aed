"""The client address behind trusted proxies (chassis.proxies), and through a real server."""

import uuid

import grpc
import pytest
from givance.identity.v1 import identity_service_pb2 as id_pb

from chassis.proxies import client_address, parse_networks

TRUSTED = parse_networks("10.0.0.0/8, 192.168.1.7, fd00::/8")


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # an untrusted peer's header is not believed
    ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  # the gateway says who it forwarded for
    ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # what the client wrote further left is ignored
    ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 192.168.1.7"], "198.51.100.1"),  # two trusted hops
    ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # repeated headers read as one list
    ("10.0.0.2", ["10.1.1.1, 10.0.0.3"], "10.1.1.1"),  # every hop trusted: the leftmost
    ("10.0.0.2", ["6.6.6.6, not-an-ip, 198.51.100.1"], "198.51.100.1"),
    ("10.0.0.2", ["6.6.6.6, not-an-ip"], "10.0.0.2"),  # malformed next to the proxy: the proxy
    ("10.0.0.2", [], "10.0.0.2"),
    ("fd00::1", ["2001:db8::5"], "2001:db8::5"),
])
def test_rightmost_untrusted_hop_is_the_client(peer, header, client):
    assert client_address(peer, header, TRUSTED) == client


def test_no_trusted_proxies_means_the_peer():
    assert client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


async def test_a_trusted_gateways_forwarded_address_is_the_one_throttled_and_audited(stubs, admin_db, identity_host,
                                                                                     monkeypatch):
    interceptor = identity_host.interceptor
    await admin_db.execute("DELETE FROM identity.login_throttle WHERE key LIKE 'address:%'")
    email = f"nobody-{uuid.uuid4().hex[:6]}@example.org"
    # not trusted: the header is ignored, the peer counts
    await _fail_login(stubs, email, (("x-forwarded-for", "198.51.100.77"),))
    keys = set(await admin_db.fetchval("SELECT array_agg(key) FROM identity.login_throttle WHERE key LIKE 'address:%'"))
    assert keys == {"address:127.0.0.1"}
    # the peer (127.0.0.1) is a trusted proxy: the client it forwarded for counts, not what was spoofed left of it
    monkeypatch.setattr(interceptor, "trusted_proxies", parse_networks("127.0.0.1"))
    await _fail_login(stubs, email, (("x-forwarded-for", "6.6.6.6, 198.51.100.77"),))
    rows = await admin_db.fetch("SELECT key, failures FROM identity.login_throttle WHERE key LIKE 'address:%'")
    assert {r["key"]: r["failures"] for r in rows} == {"address:127.0.0.1": 1, "address:198.51.100.77": 1}
    await admin_db.execute("DELETE FROM identity.login_throttle WHERE key LIKE 'address:%'")


async def _fail_login(stubs, email, metadata):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stubs.identity.Login(id_pb.LoginRequest(email=email, password="some password here"), metadata=metadata)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
