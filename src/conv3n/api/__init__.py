"""The HTTP API (SPEC §8) on FastAPI: HTTP only; every use case goes through the Runtime."""

from conv3n.api.app import create_app

__all__ = ["create_app"]
