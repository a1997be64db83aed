"""Signed links: HMAC-SHA256 over the payload, refused when altered, respelled, expired or for
another purpose."""

from __future__ import annotations

import time

from services.crm.domain import links

KEY = b"test-key"


def test_a_link_opens_until_it_expires():
    token = links.sign(KEY, links.DOWNLOAD, {"d": "doc"}, int(time.time()) + 60)
    assert links.verify(KEY, links.DOWNLOAD, token)["d"] == "doc"
    assert links.verify(KEY, links.DOWNLOAD, token, now=time.time() + 61) is None
    assert links.verify(KEY, links.SIGN, token) is None  # another purpose
    assert links.verify(b"other-key", links.DOWNLOAD, token) is None


def test_every_other_spelling_of_the_signature_is_refused():
    token = links.sign(KEY, links.DOWNLOAD, {"d": "doc"}, int(time.time()) + 60)
    payload, mac = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for ch in alphabet.replace(mac[-1], ""):  # base64's spare bits: some decode to the same bytes
        assert links.verify(KEY, links.DOWNLOAD, f"{payload}.{mac[:-1]}{ch}") is None
    assert links.verify(KEY, links.DOWNLOAD, f"{payload}x.{mac}") is None
    assert links.verify(KEY, links.DOWNLOAD, "garbage") is None
