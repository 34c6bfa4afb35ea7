"""The standard blocks (`std/...`). Imports `conv3n.sdk` and libraries only.

`BLOCKS` is the target of the `std` entry point in the `conv3n.blocks` group.
"""

from conv3n.blocks.std import (
    database,
    file,
    flow,
    http_request,
    respond,
    structure,
    timing,
    transform,
)

BLOCKS = (
    flow.noop,
    flow.fail,
    flow.set_vars,
    flow.condition,
    flow.switch,
    flow.merge,
    timing.delay,
    timing.wait,
    respond.respond,
    structure.loop,
    structure.subworkflow,
    transform.transform,
    http_request.http_request,
    file.file,
    database.database,
)

__all__ = ["BLOCKS"]
