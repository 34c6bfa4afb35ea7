"""A bare ASGI app answering a constant JSON: the raw ceiling and the local service of workflow (d).

It runs on the server stack of `conv3n serve` (uvicorn with httptools, one process), without
Starlette, FastAPI or the engine, so its throughput is what the HTTP layer alone allows on this
machine. `--loop uvloop` (default) or `--loop asyncio` (the loop `conv3n serve` runs on today:
it calls `asyncio.run` and gives uvicorn `loop="none"`).

    .venv/bin/python bench/peers/ceiling.py --port 18690 [--loop asyncio]
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


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    config = uvicorn.Config(
        app,
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
