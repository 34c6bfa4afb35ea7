"""GET /api/triggers: every trigger of the active workflows and its state."""

from datetime import datetime

from fastapi import APIRouter, Request

from conv3n.api.schemas import TriggerList, TriggerView
from conv3n.runtime.service import Runtime

router = APIRouter(tags=["triggers"])


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@router.get("/triggers", response_model=TriggerList)
async def list_triggers(request: Request) -> TriggerList:
    """Every trigger of the active workflows (manual ones aside): status, fires, next due
    time and last error."""
    runtime: Runtime = request.app.state.runtime
    items = [
        TriggerView(
            workflow_id=info.workflow_id,
            index=info.index,
            key=info.key,
            type=info.type,
            status=info.status,
            fire_count=info.fire_count,
            last_fire_at=_time(info.last_fire_at),
            next_fire_at=_time(info.next_fire_at),
            last_error=info.last_error,
            last_error_at=_time(info.last_error_at),
            owner=info.owner,
        )
        for info in await runtime.triggers.describe()
    ]
    return TriggerList(items=items)
