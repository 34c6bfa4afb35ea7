"""The engine: runs compiled Plans with asyncio, retries, timeouts and a Journal (SPEC §2).

Never imports `conv3n.blocks`; blocks reach it only through `conv3n.sdk.Context`.
"""

from conv3n.engine.clock import Clock, SystemClock
from conv3n.engine.engine import Engine, EngineOptions, WorkflowSource
from conv3n.engine.frontier import Frontier
from conv3n.engine.ids import new_execution_id
from conv3n.engine.journal import Journal, Journals, NullJournal
from conv3n.engine.retry import next_delay

__all__ = [
    "Clock",
    "Engine",
    "EngineOptions",
    "Frontier",
    "Journal",
    "Journals",
    "NullJournal",
    "SystemClock",
    "WorkflowSource",
    "new_execution_id",
    "next_delay",
]
