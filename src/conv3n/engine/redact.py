"""Redaction: stored secret values never appear in records, stored results or logs.

The runtime gives the engine the current secret values; every node result and error the
engine records goes through `Redactor.value`, and storage runs encoded JSON through
`Redactor.text`. Values shorter than `MIN_LENGTH` are not redacted (a secret "1" would blank
out every digit 1).
"""

import json
import re
from collections.abc import Iterable
from typing import Any

MIN_LENGTH = 4
MASK = "[redacted]"


class Redactor:
    """Replaces known secret values (and their JSON-escaped forms) with `[redacted]`."""

    def __init__(self, values: Iterable[str] = ()):
        self._pattern: re.Pattern[str] | None = None
        self.update(values)

    @property
    def active(self) -> bool:
        """Whether there is anything to redact."""
        return self._pattern is not None

    def update(self, values: Iterable[str]) -> None:
        """Redact exactly these values from now on."""
        forms: set[str] = set()
        for value in values:
            if len(value) >= MIN_LENGTH:
                forms.add(value)
                forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
                forms.add(json.dumps(value)[1:-1])
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def text(self, text: str) -> str:
        """`text` with every secret value masked."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """A JSON value with every string containing a secret masked (copies only what changes)."""
        if self._pattern is None:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, dict):
            return {
                self.text(k) if isinstance(k, str) else k: self._walk(v) for k, v in value.items()
            }
        return value
