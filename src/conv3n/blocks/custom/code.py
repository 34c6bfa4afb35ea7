"""custom/code: run the user's own function in a separate, limited process (SPEC §4).

The block validates the config and hands it to the runner of its language: `python.run` (a pool
of pre-started CPython workers) or `javascript.run` (Bun, else Node for JavaScript).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.errors import ExpressionError
from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

MAX_CODE_CHARS = 1_000_000


class CodeConfig(BaseModel):
    """Configuration of custom/code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Literal["python", "javascript", "typescript"] = Field(
        "python", description="python (CPython workers), javascript or typescript (Bun or Node)."
    )
    runtime: Literal["auto", "bun", "node"] = Field(
        "auto",
        description="JavaScript/TypeScript only: auto (Bun if installed, else Node), bun or node.",
    )
    code: str = Field(
        max_length=MAX_CODE_CHARS,
        description="Source defining `def main(ctx)` (Python, may be `async def`) or "
        "`export default function main(ctx)` (JavaScript/TypeScript). `ctx.input`, `ctx.node` "
        "and `ctx.vars` hold what the expression names `$input`, `$node` and `$vars` hold.",
    )
    timeout_ms: int = Field(
        10_000, gt=0, le=3_600_000, description="Wall-clock limit; the worker is killed past it."
    )
    memory_mb: int = Field(256, ge=16, le=65_536, description="Memory limit of the process.")
    cpu_ms: int | None = Field(
        None,
        gt=0,
        le=3_600_000,
        description="CPU-time limit (Python: whole seconds, rounded up); default timeout_ms.",
    )
    requirements: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Packages to install first (pip requirement strings for Python, npm "
        "package specs for JavaScript/TypeScript), cached by their hash.",
    )
    isolation: Literal["call", "warm"] = Field(
        "call",
        description="Python only. call: every call runs in a fresh process, nothing survives "
        "it. warm: the node's calls run one after another in a process kept warm for it, so "
        "module-level code and imports run once and globals survive between calls (as in AWS "
        "Lambda); the limits still apply to every call, and a failed call retires the process.",
    )

    @model_validator(mode="after")
    def _warm_is_python_only(self) -> "CodeConfig":
        if self.isolation == "warm" and self.language != "python":
            raise ValueError(
                f"isolation: warm is for Python code only (language is {self.language})"
            )
        return self


# `code` is source text, not a template: `{{` in it (f-strings, dict literals) stays as written
@block("code", raw=("code",))
async def code(ctx: Context, config: CodeConfig) -> JSON:
    """Run your own code: `main(ctx)` gets the input, the earlier nodes' results and `$vars`
    and returns the node's data (any JSON value). `print()` output goes to the node's log."""
    if config.language == "python":
        from conv3n.blocks.custom import python

        return await python.run(ctx, config)
    from conv3n.blocks.custom import javascript

    return await javascript.run(ctx, config)


def code_context(ctx: Context) -> dict[str, JSON]:
    """What `main(ctx)` sees, as JSON for the worker: SPEC §4's `input` (what `$input` holds),
    `node` and `vars`, plus `inputs` (each activated predecessor's data) and the ids.

    Raises:
        BlockError: the values cannot be sent to the code (not JSON).
    """
    try:
        execution_input = ctx.evaluate("$input")
        nodes = ctx.evaluate("$node")
    except ExpressionError as exc:
        raise BlockError(f"the node's input cannot be sent to the code: {exc.message}") from None
    return {
        "input": execution_input,
        "inputs": dict(ctx.inputs),
        "node": nodes,
        "vars": dict(ctx.vars),
        "execution_id": ctx.execution_id,
        "node_id": ctx.node_id,
        "attempt": ctx.attempt,
    }


def apply_vars(ctx: Context, new: dict[str, JSON]) -> None:
    """Write the code's changes of `ctx.vars` back to `$vars` (only what changed, so the node's
    record keeps just those effects)."""
    current = ctx.vars
    for key in [key for key in current if key not in new]:
        del current[key]
    for key, value in new.items():
        if key not in current or current[key] != value:
            current[key] = value
