"""std/respond: the webhook's HTTP response, kept in the record and used as the output."""

import pytest

from conv3n.errors import WorkflowInvalid
from conv3n.testing import run_block, run_workflow


async def test_response_is_kept_in_the_record():
    config = {
        "status": 201,
        "headers": {"X-Id": "{{ $input.id }}"},
        "body": {"created": "{{ $input.id }}"},
    }
    record = await run_workflow(
        {"nodes": [{"id": "reply", "type": "std/respond", "config": config}]}, {"id": 9}
    )
    assert record.status == "success", record.error
    assert record.response is not None
    assert (record.response.status, record.response.headers) == (201, {"X-Id": "9"})
    assert record.response.body == {"created": 9}
    assert record.nodes["reply"].data == {"created": 9}
    assert record.output == {"created": 9}


async def test_defaults_are_200_with_no_headers_and_a_null_body():
    record = await run_workflow({"nodes": [{"id": "reply", "type": "std/respond"}]})
    assert record.response is not None
    assert record.response.model_dump() == {"status": 200, "headers": {}, "body": None}


async def test_response_body_overrides_the_output_of_later_and_other_sinks():
    record = await run_workflow(
        {
            "nodes": [
                {"id": "reply", "type": "std/respond", "config": {"body": "accepted"}},
                {"id": "after", "type": "std/transform", "config": {"template": "work done"}},
                {"id": "other", "type": "std/transform", "config": {"template": "other sink"}},
            ],
            "connections": [{"from": "reply", "to": "after"}],
        }
    )
    assert record.status == "success", record.error
    assert record.nodes["after"].data == "work done"
    assert record.output == "accepted"


async def test_text_body_is_kept_as_a_string():
    result = await run_block(
        "std/respond", {"body": "plain text", "headers": {"Content-Type": "text/plain"}}
    )
    assert result.data == "plain text"


@pytest.mark.parametrize("status", [99, 600, "ok"])
async def test_status_outside_http_range_is_a_workflow_error(status: object):
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/respond", {"status": status})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.status"]


async def test_header_numbers_are_sent_as_text():
    config = {"headers": {"X-Count": "{{ len($input) }}", "X-Flag": True}}
    document = {"nodes": [{"id": "reply", "type": "std/respond", "config": config}]}
    record = await run_workflow(document, [1, 2, 3])
    assert record.status == "success", record.error
    assert record.response is not None
    assert record.response.headers == {"X-Count": "3", "X-Flag": "true"}


async def test_header_with_a_line_break_is_a_workflow_error_naming_it():
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/respond", {"headers": {"Location": "/x\r\nSet-Cookie: a=b"}})
    assert [p.where for p in invalid.value.problems] == ["nodes[0].config.headers.Location"]
