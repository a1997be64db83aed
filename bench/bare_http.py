"""python -m bench.bare_http PORT: the baseline of `bench track_click`: one bare Starlette handler
answering GET /c/{token} with a 302, on the chassis HttpHost (the same uvicorn settings comms'
public HTTP runs with)."""

from __future__ import annotations

import sys

import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from chassis.http import HttpHost


async def click(request: Request) -> RedirectResponse:
    return RedirectResponse("https://hope.example/story", status_code=302)


async def main(port: int) -> None:
    host = HttpHost("bare", Starlette(routes=[Route("/c/{token}", click)]), port=port)
    await host.serve_until_signalled()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
