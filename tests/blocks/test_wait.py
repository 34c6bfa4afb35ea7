"""std/wait without storage: it cannot park, and says how to run it instead."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.testing import run_block


async def test_wait_without_storage_fails_with_how_to_run_it():
    record = await run_block("std/wait", {"for": "approval"})
    assert record.status == "error"
    assert record.error is not None
    assert "std/wait needs a stored execution" in record.error.message


async def test_a_bad_wait_config_is_refused_naming_its_place():
    with pytest.raises(WorkflowInvalid, match=r"nodes\[0\]\.config\.for: Input should be"):
        await run_block("std/wait", {"for": "email"})
