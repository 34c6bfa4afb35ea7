"""Triggers (SPEC §5): long-running sources of executions other than webhooks.

A trigger is built from its workflow's trigger definition (`factory.build`) and runs until
cancelled, calling `fire(payload, key=...)` for every event. `fire` returns once the execution
is durably stored, so a queue trigger acknowledges a message only after that. The runtime owns
the tasks. Imports `conv3n.model`, `conv3n.errors` and libraries only.
"""

from conv3n.triggers.base import (
    Checkpoint,
    Clock,
    Fire,
    SystemClock,
    Trigger,
    TriggerState,
    TriggerStatus,
)

__all__ = [
    "Checkpoint",
    "Clock",
    "Fire",
    "SystemClock",
    "Trigger",
    "TriggerState",
    "TriggerStatus",
]
