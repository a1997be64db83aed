"""The safe page fetcher and the search provider, against local HTTP servers."""

from __future__ import annotations

import pytest

from services.ai.domain.facts import DonorFacts
from services.ai.handlers.deps import Deps
from services.ai.handlers.research import gather
from services.ai.providers.fetcher import FetchRefused, SafeFetcher
from services.ai.providers.search import BraveSearch
from tests.ai.wire import brave_app, pages_app, serve

ARTICLE = (b"<html><head><title>Ada Lovelace funds a library</title></head><body><nav>Home | About</nav>"
           b"<article><h1>Ada Lovelace funds a library</h1><p>Ada Lovelace of Leeds gave the city a new library "
           b"in 2025. The gift was announced at the town hall.</p><p>She has supported reading programmes for a "
           b"decade, according to the council.</p></article><footer>Copyright</footer></body></html>")


@pytest.fixture
async def site():
    pages: dict = {}
    host = await serve(pages_app(pages))
    yield pages, host.bound_port
    await host.stop()


def html(body: bytes = ARTICLE):
    return 200, {"content-type": "text/html; charset=utf-8"}, body


async def test_fetches_a_page_and_extracts_its_main_text(site):
    pages, port = site
    pages["/news/ada"] = html()
    page = await SafeFetcher(loopback_ports=frozenset({port})).fetch(f"http://127.0.0.1:{port}/news/ada")
    assert "gave the city a new library" in page.text and "Home | About" not in page.text
    assert page.title == "Ada Lovelace funds a library" and not page.truncated


async def test_without_test_mode_loopback_and_private_addresses_are_refused(site):
    pages, port = site
    pages["/news/ada"] = html()
    production = SafeFetcher()
    for url in (f"http://127.0.0.1:{port}/news/ada", f"http://localhost:{port}/news/ada"):
        with pytest.raises(FetchRefused, match="not a public address"):
            await production.fetch(url)
    for address in ("10.0.0.5", "172.16.1.1", "192.168.1.1", "169.254.169.254", "fe80::1", "::1", "0.0.0.0",
                    "::ffff:127.0.0.1", "100.64.0.1"):
        assert not production.allowed(address, 80), address
    assert production.allowed("93.184.216.34", 443)
    for url in ("file:///etc/passwd", "ftp://example.org/x", "http://user:pw@example.org/"):
        with pytest.raises(FetchRefused):
            await production.fetch(url)


async def test_a_redirect_to_127_0_0_1_is_refused_outside_test_mode(site):
    """The fetcher may reach this test server only (its port); a redirect to 127.0.0.1 on any
    other port (an internal admin page, say) is checked again and refused like in production."""
    pages, port = site
    inner_pages: dict = {"/admin": html(b"<html><body><p>secret admin</p></body></html>")}
    inner = await serve(pages_app(inner_pages))
    try:
        pages["/go"] = (302, {"location": f"http://127.0.0.1:{inner.bound_port}/admin"}, b"")
        fetcher = SafeFetcher(loopback_ports=frozenset({port}))
        with pytest.raises(FetchRefused, match="not a public address"):
            await fetcher.fetch(f"http://127.0.0.1:{port}/go")
        # a redirect within what is allowed is followed
        pages["/moved"] = (301, {"location": "/news/ada"}, b"")
        pages["/news/ada"] = html()
        assert "new library" in (await fetcher.fetch(f"http://127.0.0.1:{port}/moved")).text
        pages["/loop"] = (302, {"location": "/loop"}, b"")
        with pytest.raises(FetchRefused, match="redirects"):
            await fetcher.fetch(f"http://127.0.0.1:{port}/loop")
    finally:
        await inner.stop()


async def test_robots_txt_size_and_type_limits(site):
    pages, port = site
    pages["/robots.txt"] = (200, {"content-type": "text/plain"}, b"User-agent: *\nDisallow: /private\n")
    pages["/private/x"] = html()
    pages["/big"] = html(b"<html><body><p>" + b"word " * 50_000 + b"</p></body></html>")
    pages["/file.pdf"] = (200, {"content-type": "application/pdf"}, b"%PDF-1.4")
    fetcher = SafeFetcher(loopback_ports=frozenset({port}), max_bytes=10_000)
    with pytest.raises(FetchRefused, match=r"robots\.txt"):
        await fetcher.fetch(f"http://127.0.0.1:{port}/private/x")
    assert (await fetcher.fetch(f"http://127.0.0.1:{port}/big")).truncated
    with pytest.raises(FetchRefused, match="content type"):
        await fetcher.fetch(f"http://127.0.0.1:{port}/file.pdf")


async def test_web_research_searches_fetches_and_links_every_claim_to_its_source(site):
    pages, port = site
    pages["/news/ada"] = html()
    received: list = []
    results = [{"title": "Ada Lovelace funds a library", "url": f"http://127.0.0.1:{port}/news/ada",
                "description": "Ada Lovelace of Leeds gave..."},
               {"title": "Unreachable", "url": "http://10.1.2.3/x", "description": "Ada at a gala in 2024."}]
    search_host = await serve(brave_app(results, received))
    try:
        search = BraveSearch(f"http://127.0.0.1:{search_host.bound_port}", "brave-key")
        deps = Deps(keyring=None, models=None, fetcher=SafeFetcher(loopback_ports=frozenset({port})), search=search,
                    crm=None, max_pages=3)
        facts = DonorFacts("d1", "Ada", "Lovelace", city="Leeds")
        sources, basis = await gather(deps, facts)
    finally:
        await search_host.stop()
    assert received == [{"q": "Ada Lovelace Leeds", "token": "brave-key"}]
    assert basis == "web" and [s.id for s in sources] == ["s1", "s2"]
    assert "town hall" in sources[0].text  # fetched and extracted
    assert sources[1].text == "Ada at a gala in 2024."  # a private address is not fetched: its snippet stays
    from services.ai.domain.composer import summarise_research

    result = summarise_research(facts, sources)
    assert result.model == "builtin-composer" and {c.source_ids for c in result.claims} == {("s1",), ("s2",)}


async def test_a_model_summarises_web_sources_and_unsourced_claims_are_dropped():
    import json

    from services.ai.domain.facts import Source
    from services.ai.handlers import writer
    from services.ai.providers.models import build
    from services.ai.store.settings import Settings
    from tests.ai.wire import Reply, Script, openai_app

    script = Script(replies=[Reply(text=json.dumps({"summary": "Ada funds libraries.", "claims": [
        {"text": "Ada gave Leeds a library in 2025.", "source_ids": ["s1"]},
        {"text": "Ada is a billionaire.", "source_ids": ["s7"]}]}))])
    host = await serve(openai_app(script))
    try:
        deps = Deps(keyring=None, models=build, fetcher=None, search=None, crm=None, model_retries=0)
        s = Settings(organization_id=None, provider="openai", base_url=f"http://127.0.0.1:{host.bound_port}/v1",
                     model="research-1")
        facts = DonorFacts("d1", "Ada", "Lovelace", city="Leeds", notes="call her Lady Ada")
        result, completion = await writer.research(deps, s, facts, [Source("s1", "https://news.example/ada",
                                                                           "Library", "Ada gave a library.")])
    finally:
        await host.stop()
    assert result.model == "research-1" and result.summary == "Ada funds libraries."
    assert [(c.text, c.source_ids) for c in result.claims] == [("Ada gave Leeds a library in 2025.", ("s1",))]
    assert completion.tokens == 18 and "call her Lady Ada" not in json.dumps(script.received[0])
