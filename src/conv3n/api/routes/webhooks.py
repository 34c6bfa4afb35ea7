"""ANY /webhook/{path} in /openapi.json; the requests are answered by `api.webhook_path`."""

from fastapi import APIRouter, Request, Response

from conv3n.api.webhook_path import METHODS, PREFIX, handle, serve_webhook

__all__ = ["PREFIX", "router", "serve_webhook"]

router = APIRouter(tags=["webhooks"])


async def webhook(request: Request, path: str) -> Response:
    """Run the workflow; sync: its std/respond response or 200 with its output (500 with
    `{error, execution_id}` on failure); async: 202 `{execution_id}`.

    The routed form of `serve_webhook`, for an app that includes this router without
    answering /webhook/* first (conv3n's own app never routes there).
    """
    return await handle(request.app.state.runtime, request.scope, request.receive)


# In /openapi.json; conv3n's app answers /webhook/* before routing (serve_webhook).
for _method in METHODS:
    router.add_api_route(
        "/webhook/{path:path}",
        webhook,
        methods=[_method],
        operation_id=f"webhook_{_method.lower()}",
    )
