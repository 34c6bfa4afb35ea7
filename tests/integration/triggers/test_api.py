"""GET /api/triggers is documented in OpenAPI and guarded by the API token."""

import httpx

from conv3n.api import create_app
from conv3n.runtime.service import Runtime


async def test_the_listing_is_described_in_openapi(client: httpx.AsyncClient):
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/triggers"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TriggerList"}
    fields = spec["components"]["schemas"]["TriggerView"]["properties"]
    assert {"workflow_id", "key", "type", "status", "next_fire_at", "last_error"} <= set(fields)
    assert "standby" in fields["status"]["description"]


async def test_the_listing_needs_the_api_token_when_one_is_set(runtime: Runtime):
    transport = httpx.ASGITransport(app=create_app(runtime, api_token="s3cret"))
    async with httpx.AsyncClient(transport=transport, base_url="http://conv3n") as http:
        assert (await http.get("/api/triggers")).status_code == 401
        allowed = await http.get("/api/triggers", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200
        assert allowed.json() == {"items": []}
