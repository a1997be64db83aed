"""Web search behind one interface. The real one speaks Brave Search's Web Search API
(GET <base>/res/v1/web/search?q=...&count=N, header X-Subscription-Token) over httpx; without a
search URL there is none, and research uses the organization's own data (and says so)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class SearchResult:
    url: str
    title: str
    snippet: str


class Search(Protocol):
    async def search(self, query: str, count: int = 5) -> list[SearchResult]: ...


class SearchFailed(Exception):
    pass


class BraveSearch:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    async def search(self, query: str, count: int = 5) -> list[SearchResult]:
        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
            try:
                resp = await client.get(f"{self.base_url}/res/v1/web/search", params={"q": query, "count": count},
                                        headers={"X-Subscription-Token": self.api_key, "Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise SearchFailed(f"search: {exc}") from exc
        if resp.status_code != 200:
            raise SearchFailed(f"search: HTTP {resp.status_code}")
        results = (resp.json().get("web") or {}).get("results") or []
        out = []
        for r in results[:count]:
            url = r.get("url") or ""
            if url.startswith(("http://", "https://")):
                out.append(SearchResult(url=url, title=str(r.get("title") or "")[:300],
                                        snippet=str(r.get("description") or "")[:1000]))
        return out
