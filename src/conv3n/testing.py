"""Test harnesses for block authors and for conv3n's own tests.

`run_block` runs one block through the real attempt path (render, validate, timeout, retry);
`run_workflow` runs a whole document. Both use a real Engine without storage.

    result = await run_block("std/transform", {"template": "{{ 1 + 1 }}"})
    assert result.data == 2
"""

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conv3n.compiler import compile_workflow, load_workflow, parse_text
from conv3n.engine import Clock, Engine, EngineOptions, Journal
from conv3n.model import JSON, ExecutionRecord, NodeRecord
from conv3n.runtime import FileWorkflows
from conv3n.sdk import BlockRegistry, BlockSpec


def _registry(blocks: tuple[BlockSpec, ...]) -> BlockRegistry:
    registry = BlockRegistry.discover()
    if blocks:
        registry.add("test", blocks, origin="(test)")
    return registry


def _read(path: Path) -> tuple[str, str]:
    return str(path.resolve()), path.read_text(encoding="utf-8")


async def run_workflow(
    document: Mapping[str, Any] | str | Path,
    input: JSON = None,
    *,
    blocks: tuple[BlockSpec, ...] = (),
    registry: BlockRegistry | None = None,
    journal: Journal | None = None,
    secrets: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    engine: Engine | None = None,
    options: EngineOptions | None = None,
) -> ExecutionRecord:
    """Validate, compile and run a workflow (a dict, YAML/JSON text, or a file path).

    Extra `blocks` are registered under the `test/` namespace. `options` replaces the engine
    options (files root, cache dir, ...); `env` then still sets `$env`.
    """
    registry = registry or _registry(blocks)
    source: str | None = None
    if isinstance(document, Path):
        source, text = await asyncio.to_thread(_read, document)
        data: Any = parse_text(text, name=document.name)
    elif isinstance(document, str):
        data = parse_text(document)
    else:
        data = dict(document)
    if isinstance(data, dict):
        data.setdefault("version", 1)
    plan = compile_workflow(load_workflow(data), registry, source=source)
    if engine is not None:
        return await engine.execute(plan, input)
    if options is None:
        options = EngineOptions(env=dict(env or {}))
    elif env is not None:
        options = dataclasses.replace(options, env=dict(env))
    async with Engine(
        journal=journal,
        clock=clock,
        secrets=secrets,
        options=options,
        workflows=FileWorkflows(registry),
    ) as own:
        return await own.execute(plan, input)


async def run_block(
    block: BlockSpec | str,
    config: Mapping[str, JSON] | None = None,
    *,
    input: JSON = None,
    secrets: Mapping[str, str] | None = None,
    retry: Mapping[str, Any] | None = None,
    timeout_ms: int | None = None,
    engine: Engine | None = None,
    options: EngineOptions | None = None,
) -> NodeRecord:
    """Run one block as the only node of a workflow; the node's record.

    `input` is both `$input` and the block's `ctx.input`.
    """
    blocks: tuple[BlockSpec, ...] = ()
    if isinstance(block, BlockSpec):
        blocks = (block,)
        block_type = f"test/{block.name}"
    else:
        block_type = block
    node: dict[str, Any] = {"id": "node", "type": block_type, "config": dict(config or {})}
    if retry is not None:
        node["retry"] = dict(retry)
    if timeout_ms is not None:
        node["timeout_ms"] = timeout_ms
    record = await run_workflow(
        {"version": 1, "nodes": [node]},
        input,
        blocks=blocks,
        secrets=secrets,
        engine=engine,
        options=options,
    )
    return record.nodes["node"]
