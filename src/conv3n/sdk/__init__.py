"""What block authors import: `@block`, `Route`, `Context`, `BlockError` and the registry.

This namespace is a contract, pinned by tests/meta/test_exports.py.
"""

from conv3n.errors import BlockError
from conv3n.model import JSON, WebhookResponse
from conv3n.sdk.block import ERROR_PORT, BlockSpec, Route, block
from conv3n.sdk.context import Context
from conv3n.sdk.registry import ENTRY_POINT_GROUP, BlockRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "ERROR_PORT",
    "JSON",
    "BlockError",
    "BlockRegistry",
    "BlockSpec",
    "Context",
    "Route",
    "WebhookResponse",
    "block",
]
