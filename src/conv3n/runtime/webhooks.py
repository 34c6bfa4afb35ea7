"""The index of webhook triggers of active workflows: which workflow a request starts."""

from typing import Any

from conv3n.model import Workflow

Route = tuple[str, str, dict[str, Any]]  # (method, workflow id, trigger)


class WebhookIndex:
    """Webhook triggers by path, rebuilt when workflows are saved or (de)activated."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}

    def rebuild(self, active: list[tuple[str, Workflow]]) -> None:
        """Index the webhook triggers of these (workflow id, workflow) pairs."""
        routes: dict[str, list[Route]] = {}
        for workflow_id, workflow in active:
            for trigger in workflow.triggers:
                if trigger.get("type") == "webhook" and isinstance(trigger.get("path"), str):
                    path = trigger["path"].strip("/")
                    method = str(trigger.get("method") or "POST").upper()
                    routes.setdefault(path, []).append((method, workflow_id, trigger))
        self._routes = routes

    def find(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """(workflow id, trigger) listening on this path and method, if any."""
        for allowed, workflow_id, trigger in self._routes.get(path.strip("/"), ()):
            if allowed == method.upper():
                return workflow_id, trigger
        return None
