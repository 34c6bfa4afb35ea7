"""Triggers (SPEC §5): long-running sources of executions other than webhooks.

A trigger is built from its workflow's trigger definition and runs until cancelled, calling
`fire(payload, key=...)` for every event. `fire` returns once the execution is durably stored,
so a queue trigger acknowledges a message only after that. The runtime owns the tasks.
Imports `conv3n.model`, `conv3n.errors` and libraries only.
"""

from conv3n.triggers.base import Fire, Trigger, TriggerState

__all__ = ["Fire", "Trigger", "TriggerState"]
