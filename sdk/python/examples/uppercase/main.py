"""example/uppercase: upper-case a field of the input; an empty text goes to the `empty` port."""

import conv3n_block


@conv3n_block.handler
def uppercase(request: conv3n_block.Request) -> object:
    field = request.config.get("field", "")
    repeat = request.config.get("repeat", 1)
    value = request.input.get(field) if field and isinstance(request.input, dict) else request.input
    if not isinstance(value, str):
        raise conv3n_block.BlockError(
            f"expected text at {field or 'the input'}, got {type(value).__name__}",
            details={"field": field},
        )
    print(f"upper-casing {len(value)} characters")  # noqa: T201 - goes to the node's log
    request.log(f"attempt {request.attempt} of node {request.node_id}")
    if not value:
        return conv3n_block.Port("empty", {"text": ""})
    return {"text": value.upper() * repeat}
