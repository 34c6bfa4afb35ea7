"""The HTTP API (SPEC §8) on FastAPI: HTTP only; every use case goes through the Runtime.

`create_app` is imported on first use: `api.front` and `api.webhook_path` (what `conv3n serve`
needs to answer webhooks) must not pay for FastAPI.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conv3n.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from conv3n.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
