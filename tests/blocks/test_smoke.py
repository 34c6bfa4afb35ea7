from conv3n.testing import run_block, run_workflow


async def test_transform_template_renders_native_value():
    result = await run_block("std/transform", {"template": "{{ 1 + 1 }}"})
    assert result.status == "success"
    assert result.data == 2


async def test_run_workflow_accepts_yaml_text():
    record = await run_workflow("nodes: [{id: a, type: std/noop}]", {"x": 1})
    assert record.output == {"x": 1}
