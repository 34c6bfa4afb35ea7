"""The JSON type alias: the only place `Any` is allowed to stand for user data."""

from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""A JSON-compatible value: None, bool, int, float, str, list of JSON, dict of str to JSON."""
