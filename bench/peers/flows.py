"""The peers' versions of workflows (a)-(d): n8n workflow JSON and a Node-RED flows.json.

They do what bench/peers/workflows/{a,b,c,d}.yaml do for conv3n, node for node:
(a) set two fields, (b) 10 x (set, condition), (c) a code node summing 1,000 numbers,
(d) an HTTP GET of the local service, a transform; each ends in the system's webhook response.
The files are committed; this script rewrites them:

    .venv/bin/python bench/peers/flows.py
"""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N8N_DIR = HERE / "workflows" / "n8n"
NODE_RED_FILE = HERE / "workflows" / "node-red" / "flows.json"
UPSTREAM = "http://127.0.0.1:18691/data"
CHAIN = 10  # (set, condition) pairs of workflow (b)

# the same code in the three systems: 1,000 numbers, summed
JS_SUM = (
    "const numbers = Array.from({ length: 1000 }, (_, i) => i * n);\n"
    "const sum = numbers.reduce((a, b) => a + b, 0);\n"
)


def n8n_id(workflow: str, *, cli: bool = False) -> str:
    """n8n workflow ids are 16 characters; `cli`: the variant `n8n execute` can start."""
    return f"benchpeers{workflow}{'cli' if cli else ''}00000"[:16]


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "bench-peers/" + "/".join(parts)))


# n8n ------------------------------------------------------------------------------------------


def _n8n_node(
    workflow: str, name: str, kind: str, version: float, x: int, parameters: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": _uid(workflow, name),
        "name": name,
        "type": f"n8n-nodes-base.{kind}",
        "typeVersion": version,
        "position": [x, 300],
        "parameters": parameters,
    }


def _n8n_set(workflow: str, name: str, x: int, fields: dict[str, str]) -> dict[str, Any]:
    assignments = [
        {
            "id": _uid(workflow, name, key),
            "name": key,
            "value": value,
            "type": "string" if key == "greeting" or key == "source" else "number",
        }
        for key, value in fields.items()
    ]
    return _n8n_node(
        workflow, name, "set", 3.4, x, {"assignments": {"assignments": assignments}, "options": {}}
    )


def _n8n_if(workflow: str, name: str, x: int) -> dict[str, Any]:
    condition = {
        "id": _uid(workflow, name, "c"),
        "leftValue": "={{ $json.step }}",
        "rightValue": 0,
        "operator": {"type": "number", "operation": "gt"},
    }
    return _n8n_node(
        workflow,
        name,
        "if",
        2.2,
        x,
        {
            "conditions": {
                "options": {
                    "caseSensitive": True,
                    "leftValue": "",
                    "typeValidation": "strict",
                    "version": 2,
                },
                "conditions": [condition],
                "combinator": "and",
            },
            "options": {},
        },
    )


def n8n_workflow(workflow: str, *, cli: bool = False) -> dict[str, Any]:
    """Workflow (a)-(d) for n8n. `cli`: for `n8n execute`, which needs an Execute Workflow
    Trigger to start from: the trigger and a Set node giving the webhook's `body` replace the
    Webhook node, and there is no Respond to Webhook node."""
    webhook = _n8n_node(
        workflow,
        "Webhook",
        "webhook",
        2,
        0,
        {
            "httpMethod": "POST",
            "path": f"bench-{workflow}",
            "responseMode": "responseNode",
            "options": {},
        },
    )
    webhook["webhookId"] = _uid(workflow, "webhook-id")
    middle: list[dict[str, Any]] = []
    if workflow == "a":
        middle.append(
            _n8n_set(
                workflow,
                "Fields",
                200,
                {
                    "greeting": '={{ "hello " + $json.body.name }}',
                    "double": "={{ $json.body.n * 2 }}",
                },
            )
        )
        body = "={{ { greeting: $json.greeting, double: $json.double } }}"
    elif workflow == "b":
        for i in range(1, CHAIN + 1):
            base = "$json.body.n" if i == 1 else "$json.step"
            middle.append(
                _n8n_set(workflow, f"Set{i}", 200 * (2 * i - 1), {"step": f"={{{{ {base} + 1 }}}}"})
            )
            middle.append(_n8n_if(workflow, f"Check{i}", 200 * 2 * i))
        body = "={{ { steps: $json.step } }}"
    elif workflow == "c":
        code = "const n = $input.first().json.body.n;\n" + JS_SUM + "return [{ json: { sum } }];"
        middle.append(_n8n_node(workflow, "Total", "code", 2, 200, {"jsCode": code}))
        body = "={{ { sum: $json.sum } }}"
    else:
        middle.append(
            _n8n_node(workflow, "Fetch", "httpRequest", 4.2, 200, {"url": UPSTREAM, "options": {}})
        )
        middle.append(
            _n8n_set(
                workflow,
                "Shape",
                400,
                {
                    "source": "={{ $json.source }}",
                    "count": "={{ $json.items.length }}",
                    "total": "={{ $json.items.reduce((a, b) => a + b, 0) }}",
                },
            )
        )
        body = "={{ { source: $json.source, count: $json.count, total: $json.total } }}"
    reply = _n8n_node(
        workflow,
        "Respond",
        "respondToWebhook",
        1.1,
        200 * (len(middle) + 1),
        {"respondWith": "json", "responseBody": body, "options": {}},
    )
    nodes = [webhook, *middle, reply]
    if cli:
        trigger = _n8n_node(
            workflow, "Start", "executeWorkflowTrigger", 1.1, -200, {"inputSource": "passthrough"}
        )
        given = _n8n_node(
            workflow,
            "Input",
            "set",
            3.4,
            0,
            {
                "assignments": {
                    "assignments": [
                        {
                            "id": _uid(workflow, "input"),
                            "name": "body",
                            "type": "object",
                            "value": '={{ { "name": "bench", "n": 3 } }}',
                        }
                    ]
                },
                "options": {},
            },
        )
        nodes = [trigger, given, *middle]
    connections = {
        node["name"]: {"main": [[{"node": after["name"], "type": "main", "index": 0}]]}
        for node, after in itertools.pairwise(nodes)
    }
    return {
        "id": n8n_id(workflow, cli=cli),
        "name": f"bench ({workflow}){' for n8n execute' if cli else ''}",
        "active": False,
        "nodes": nodes,
        "connections": connections,
        "settings": {"executionOrder": "v1"},
        "pinData": {},
        "versionId": _uid(workflow, "version", str(cli)),
        "tags": [],
    }


# Node-RED -------------------------------------------------------------------------------------


def _rule_set(path: str, jsonata: str) -> dict[str, str]:
    return {"t": "set", "p": path, "pt": "msg", "to": jsonata, "tot": "jsonata"}


def node_red_flow(workflow: str, tab: str, y: int) -> list[dict[str, Any]]:
    def node(name: str, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": _uid("nr", workflow, name)[:16],
            "type": kind,
            "z": tab,
            "name": name,
            **fields,
        }

    nodes = [
        node(
            "webhook",
            "http in",
            url=f"/bench-{workflow}",
            method="post",
            upload=False,
            swaggerDoc="",
        )
    ]
    if workflow == "a":
        nodes.append(
            node(
                "fields",
                "change",
                rules=[
                    _rule_set("out.greeting", '"hello " & payload.name'),
                    _rule_set("out.double", "payload.n * 2"),
                    {"t": "move", "p": "out", "pt": "msg", "to": "payload", "tot": "msg"},
                ],
            )
        )
    elif workflow == "b":
        for i in range(1, CHAIN + 1):
            base = "payload.n" if i == 1 else "payload.step"
            nodes.append(
                node(f"set{i}", "change", rules=[_rule_set("payload.step", f"{base} + 1")])
            )
            nodes.append(
                node(
                    f"check{i}",
                    "switch",
                    property="payload.step",
                    propertyType="msg",
                    rules=[{"t": "gt", "v": "0", "vt": "num"}],
                    checkall="true",
                    repair=False,
                    outputs=1,
                )
            )
        nodes.append(
            node("body", "change", rules=[_rule_set("payload", '{"steps": payload.step}')])
        )
    elif workflow == "c":
        code = "const n = msg.payload.n;\n" + JS_SUM + "msg.payload = { sum };\nreturn msg;"
        nodes.append(
            node(
                "total",
                "function",
                func=code,
                outputs=1,
                timeout=0,
                noerr=0,
                initialize="",
                finalize="",
                libs=[],
            )
        )
    else:
        nodes.append(
            node(
                "fetch",
                "http request",
                method="GET",
                ret="obj",
                paytoqs="ignore",
                url=UPSTREAM,
                tls="",
                persist=False,
                proxy="",
                insecureHTTPParser=False,
                authType="",
                senderr=False,
                headers=[],
            )
        )
        nodes.append(
            node(
                "shape",
                "change",
                rules=[
                    _rule_set(
                        "payload",
                        '{"source": payload.source, "count": $count(payload.items), '
                        '"total": $sum(payload.items)}',
                    ),
                    # the upstream's headers would otherwise become the webhook response's headers
                    {"t": "delete", "p": "headers", "pt": "msg"},
                    {"t": "delete", "p": "statusCode", "pt": "msg"},
                ],
            )
        )
    nodes.append(node("respond", "http response", statusCode="", headers={}))
    for index, current in enumerate(nodes):
        current["x"], current["y"] = 150 + 120 * index, y
        following = nodes[index + 1 : index + 2]
        current["wires"] = [[following[0]["id"]]] if following else []
    return nodes


def node_red_flows(workflows: list[str]) -> list[dict[str, Any]]:
    tab = _uid("nr", "tab")[:16]
    flows: list[dict[str, Any]] = [
        {"id": tab, "type": "tab", "label": "bench-peers", "disabled": False, "info": ""}
    ]
    for index, workflow in enumerate(workflows):
        flows.extend(node_red_flow(workflow, tab, 80 + 100 * index))
    return flows


def write_all() -> None:
    N8N_DIR.mkdir(parents=True, exist_ok=True)
    for workflow in "abcd":
        path = N8N_DIR / f"{workflow}.json"
        path.write_text(json.dumps(n8n_workflow(workflow), indent=2) + "\n")
        path = N8N_DIR / f"{workflow}-cli.json"
        path.write_text(json.dumps(n8n_workflow(workflow, cli=True), indent=2) + "\n")
    NODE_RED_FILE.parent.mkdir(parents=True, exist_ok=True)
    NODE_RED_FILE.write_text(json.dumps(node_red_flows(list("abcd")), indent=2) + "\n")


if __name__ == "__main__":
    write_all()
    print(f"wrote {N8N_DIR}/*.json and {NODE_RED_FILE}")
