"""The block-author API (`conv3n.sdk`) is a contract: its surface changes only on purpose."""

import types

import conv3n.sdk

REVIEWED_SDK_NAMES = {
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
}


def test_sdk_surface_is_deliberate():
    public = {
        name
        for name, value in vars(conv3n.sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(conv3n.sdk.__all__) == REVIEWED_SDK_NAMES


def test_every_package_declares_its_front_door():
    import importlib

    for name in ("model", "expr", "sdk", "compiler", "engine", "runtime"):
        package = importlib.import_module(f"conv3n.{name}")
        exported = package.__all__
        assert exported, name
        for symbol in exported:
            assert hasattr(package, symbol), f"conv3n.{name}.{symbol}"
