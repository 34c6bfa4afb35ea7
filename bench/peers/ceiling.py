"""A constant JSON answer: the raw ceilings and the local service of workflow (d).

`--app fastapi` is a FastAPI route on the server stack of `conv3n serve` (uvicorn with uvloop
and httptools, one process), without the engine: the ceiling the targets are shares of
(decision 0010). `--app asgi` (default) is a bare ASGI app on the same uvicorn, without
Starlette or FastAPI: what the HTTP layer alone allows on this machine, shown for reference,
and the upstream service of workflow (d). `--loop asyncio` runs it on asyncio's own loop.

    .venv/bin/python bench/peers/ceiling.py --port 18690 [--app fastapi] [--loop asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

BODY = b'{"source":"upstream","items":[1,2,3,4,5]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Read the whole request body, answer BODY."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def fastapi_app() -> Any:
    """The same answer from FastAPI routes (GET /health, any method on /data)."""
    from fastapi import FastAPI, Response

    api = FastAPI()

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.api_route("/data", methods=["GET", "POST"])
    async def data() -> Response:
        return Response(BODY, media_type="application/json")

    return api


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--app", choices=["asgi", "fastapi"], default="asgi")
    args = parser.parse_args()
    config = uvicorn.Config(
        fastapi_app() if args.app == "fastapi" else app,
        host=args.host,
        port=args.port,
        loop="none" if args.loop == "asyncio" else "uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    if args.loop == "asyncio":
        asyncio.run(server.serve())  # as conv3n serve does
    else:
        server.run()


if __name__ == "__main__":
    main()
