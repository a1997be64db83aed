"""/openapi.json (OpenAPI 3.1 from the descriptors) and /docs (Swagger UI, served locally),
the page rendered by headless Chromium."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def http(gateway_host):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway_host.bound_port}", timeout=30) as client:
        yield client


async def test_openapi_describes_the_routes_schemas_and_security(http):
    doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    get = doc["paths"]["/v1/donors/{id}"]["get"]
    assert get["operationId"] == "DonorService_GetDonor"
    assert get["security"] == [{"bearer": [], "tenant": []}]
    assert get["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith("google.rpc.Status")
    assert "ETag" in get["responses"]["200"]["headers"]
    assert doc["paths"]["/v1/auth:signUp"]["post"]["security"] == []
    patch = doc["paths"]["/v1/donors/{donor_id}"]["patch"]
    assert "update_mask" in [p["name"] for p in patch["parameters"]]
    assert "If-Match" in [p["name"] for p in patch["parameters"]]
    schemas = doc["components"]["schemas"]
    donor = schemas["givance.crm.v1.Donor"]["properties"]
    assert donor["lastName"] == {"type": "string"}
    assert donor["createTime"]["format"] == "date-time"
    assert schemas["givance.crm.v1.ExportFormat"]["enum"][0] == "EXPORT_FORMAT_UNSPECIFIED"
    assert doc["components"]["securitySchemes"]["tenant"] == {"type": "apiKey", "in": "header",
                                                              "name": "x-tenant-id"}
    export = doc["paths"]["/v1/donors:export"]["get"]["responses"]["200"]["content"]
    assert "application/x-ndjson" in export


async def test_docs_page_and_its_assets_are_served_locally(http):
    page = await http.get("/docs")
    assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    js = await http.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it when run as root)")
async def test_docs_render_in_headless_chromium_and_list_the_donor_endpoints(gateway_host, tmp_path):
    url = f"http://127.0.0.1:{gateway_host.bound_port}/docs"
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    # The services run on this event loop: the browser runs as a subprocess that does not block it.
    shot = await asyncio.create_subprocess_exec(CHROMIUM, *args, f"--screenshot={tmp_path / 'docs.png'}",
                                                "--window-size=1280,2000", url,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await shot.communicate()
    png = (tmp_path / "docs.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    dom = await asyncio.create_subprocess_exec(CHROMIUM, *args, "--dump-dom", url,
                                               stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await dom.communicate()
    html = out.decode()
    assert "Givance API" in html
    assert "/v1/donors/{id}" in html and "/v1/donors:merge" in html
    assert "DonorService" in html
