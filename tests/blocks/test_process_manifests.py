"""Process block manifests and their discovery: bad manifests are reported by file and field and
never hide the good ones; blocks come from the blocks folder and from entry points; the config
model is the manifest's JSON Schema."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conv3n.blocks import process
from conv3n.errors import BlockRegistryError
from conv3n.runtime import Settings, describe_blocks, discover_blocks
from conv3n.sdk import BlockRegistry
from conv3n.testing import run_workflow
from tests.conftest import ROOT

ECHO = """\
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(json.dumps({'id': r['id'], 'ok': True, 'data': r['config']}), flush=True)
"""
SCHEMA = {
    "type": "object",
    "properties": {
        "x": {"type": "integer"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "$defs": {"item": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "additionalProperties": False,
}


def write_block(root: Path, folder: str, manifest: Any, *, name: str = "block.json") -> Path:
    """A block folder with `manifest` (a dict as JSON, or text as is) and an echo program."""
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "main.py").write_text(ECHO)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (path / name).write_text(text)
    return path / name


def good(block_type: str = "acme/echo", **changes: Any) -> dict[str, Any]:
    return {"type": block_type, "command": [sys.executable, "main.py"], **changes}


@pytest.mark.parametrize(
    ("manifest", "name", "expected"),
    [
        ("type: [unclosed", "block.yaml", "block.yaml: not valid YAML (line 1, column"),
        ("{nope", "block.json", "block.json: not valid JSON (line 1, column 2)"),
        ("- a list", "block.yaml", "block.yaml: a manifest is an object with `type` and `command`"),
        (good("Acme/echo"), "block.json", "block.json: type: String should match pattern"),
        ({"type": "acme/echo"}, "block.json", "block.json: command: required field is missing"),
        (good(colour="red"), "block.json", "block.json: colour: unknown field"),
        (
            good(mode="forever"),
            "block.json",
            "block.json: mode: Input should be 'once' or 'worker'",
        ),
        (good(ports=[]), "block.json", "block.json: ports: Tuple should have at least 1 item"),
        (good(ports=["a b"]), "block.json", "block.json: ports: bad port name 'a b'"),
        (
            good(timeout_ms=0),
            "block.json",
            "block.json: timeout_ms: Input should be greater than 0",
        ),
        (
            good(config_schema={"type": "object", "properties": {"x": {"type": "integr"}}}),
            "block.json",
            "block.json: config_schema: not a valid JSON Schema at properties.x.type:",
        ),
        (
            good(config_schema={"type": "string"}),
            "block.json",
            "block.json: config_schema: a node's config is an object, so the schema's type must "
            "be 'object' (got 'string')",
        ),
        (
            good(config_schema={"$ref": "https://example.com/schema.json"}),
            "block.json",
            "config_schema: $ref 'https://example.com/schema.json': only references within the "
            "schema (#/$defs/...) work",
        ),
        (
            good(config_schema={"$ref": "#/$defs/missing"}),
            "block.json",
            "config_schema: $ref '#/$defs/missing' names nothing in the schema",
        ),
        (
            '{"type": "acme/echo", "command": ["x"], "config_schema": '
            + '{"not": ' * 5000
            + "{}"
            + "}" * 5001,
            "block.json",
            "block.json: the manifest nests too deeply",
        ),
        (
            '{"type": "acme/echo", "command": ["x"], "config_schema": '
            + '{"not": ' * 400
            + "{}"
            + "}" * 401,
            "block.json",
            "block.json: config_schema: the schema nests too deeply",
        ),
        ("type: acme/echo\n" + "#" * (1024 * 1024), "block.yaml", "larger than 1,048,576 bytes"),
        (b"\xff\xfe type", "block.yaml", "block.yaml: the manifest is not UTF-8 text"),
    ],
)
def test_a_bad_manifest_is_reported_by_file_and_field_and_the_others_still_load(
    tmp_path: Path, manifest: Any, name: str, expected: str
) -> None:
    write_block(tmp_path, "fine", good("acme/fine"))
    if isinstance(manifest, bytes):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / name).write_bytes(manifest)
    else:
        write_block(tmp_path, "bad", manifest, name=name)
    found = process.load_folder(tmp_path)
    assert list(found.paths) == ["acme/fine"]
    assert len(found.problems) == 1
    problem = found.problems[0]
    assert problem.startswith(str(tmp_path / "bad" / name)), problem
    assert expected in problem, problem


def test_two_manifests_in_one_folder_and_a_type_declared_twice_are_problems(
    tmp_path: Path,
) -> None:
    write_block(tmp_path, "both", good("acme/both"))
    write_block(tmp_path, "both", "type: acme/both\ncommand: [x]\n", name="block.yaml")
    write_block(tmp_path, "a", good("acme/same"))
    write_block(tmp_path, "b", good("acme/same"))
    found = process.load_folder(tmp_path)
    assert list(found.paths) == ["acme/same"]
    assert sorted(found.problems) == [
        f"{tmp_path / 'b' / 'block.json'}: block 'acme/same' is also declared by "
        f"{tmp_path / 'a' / 'block.json'}",
        f"{tmp_path / 'both'}: more than one manifest (block.yaml, block.json)",
    ]


def test_blocks_may_be_grouped_one_folder_deeper(tmp_path: Path) -> None:
    write_block(tmp_path, "acme/one", good("acme/one"))
    write_block(tmp_path, "acme/two", good("acme/two", mode="once"))
    write_block(tmp_path, "other", good("other/three"))
    found = process.load_folder(tmp_path)
    assert found.problems == ()
    assert {ns: [s.name for s in specs] for ns, specs in found.namespaces.items()} == {
        "acme": ["one", "two"],
        "other": ["three"],
    }


def test_the_config_model_publishes_the_manifest_schema_unchanged(tmp_path: Path) -> None:
    write_block(tmp_path, "echo", good(config_schema=SCHEMA, description="  Echo the config. "))
    registry, problems = discover_blocks(Settings(data_dir=tmp_path, blocks_dir_path=tmp_path))
    assert problems == []
    spec = registry.get("acme/echo")
    assert spec.config_model.model_json_schema() == SCHEMA
    described = next(b for b in describe_blocks(registry) if b["type"] == "acme/echo")
    assert described == {
        "type": "acme/echo",
        "description": "Echo the config.",
        "ports": ["main"],
        "dynamic_ports": False,
        "config_schema": SCHEMA,
    }


def test_the_config_model_locates_nested_violations_and_accepts_valid_configs(
    tmp_path: Path,
) -> None:
    path = write_block(tmp_path, "echo", good(config_schema=SCHEMA))
    spec = process.block_spec(process.manifest.read(path), path)
    valid = spec.config_model.model_validate({"x": 1, "items": [{"name": "a"}]})
    assert valid.model_dump() == {"x": 1, "items": [{"name": "a"}]}
    with pytest.raises(ValidationError) as invalid:
        spec.config_model.model_validate({"x": 1.5, "items": [{"name": "a"}, {}, {"name": 3}]})
    assert [(e["loc"], e["msg"]) for e in invalid.value.errors()] == [
        (("items", 2, "name"), "3 is not of type 'string'"),
        (("x",), "1.5 is not of type 'integer'"),
    ]
    with pytest.raises(ValidationError):
        spec.config_model.model_validate({"x": 1, "y": {"{{ not an expression }}": 1}})


def test_a_folder_namespace_clashing_with_an_installed_package_names_both(tmp_path: Path) -> None:
    write_block(tmp_path, "mine", good("std/mine"))
    with pytest.raises(BlockRegistryError) as clash:
        discover_blocks(Settings(data_dir=tmp_path, blocks_dir_path=tmp_path))
    assert clash.value.message == (
        f"block namespace 'std' is claimed by both conv3n and the blocks folder {tmp_path}"
    )


def test_a_missing_blocks_folder_adds_nothing(tmp_path: Path) -> None:
    registry, problems = discover_blocks(Settings(data_dir=tmp_path))
    assert problems == []
    assert registry.types() == BlockRegistry.discover().types()


def test_a_blocks_dir_that_is_not_a_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for chosen in (tmp_path / "file", tmp_path / "absent"):
        _, problems = discover_blocks(Settings(data_dir=tmp_path, blocks_dir_path=chosen))
        assert problems == [f"CONV3N_BLOCKS_DIR: {chosen} is not a folder"]


def test_blocks_dir_defaults_to_the_data_dir_and_is_read_from_the_environment(
    tmp_path: Path,
) -> None:
    assert Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)}).blocks_dir == tmp_path / "blocks"
    chosen = tmp_path / "elsewhere"
    settings = Settings.from_env({"CONV3N_DATA_DIR": "x", "CONV3N_BLOCKS_DIR": str(chosen)})
    assert settings.blocks_dir == chosen


def test_from_manifests_refuses_bad_manifests_and_foreign_namespaces(tmp_path: Path) -> None:
    write_block(tmp_path, "one", good("acme/one"))
    write_block(tmp_path, "two", good("other/two"))
    with pytest.raises(BlockRegistryError) as foreign:
        process.from_manifests(tmp_path, namespace="acme")
    assert foreign.value.message == (
        f"{tmp_path / 'two' / 'block.json'}: type 'other/two' is not in namespace 'acme'"
    )
    with pytest.raises(BlockRegistryError, match="span several namespaces"):
        process.from_manifests(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BlockRegistryError, match="holds no block manifest"):
        process.from_manifests(tmp_path / "empty")
    with pytest.raises(BlockRegistryError, match="no such folder"):
        process.from_manifests(tmp_path / "absent")
    write_block(tmp_path, "three", {"type": "acme/three"})
    with pytest.raises(BlockRegistryError, match="command: required field is missing"):
        process.from_manifests(tmp_path / "three")


async def test_a_distribution_exposes_manifests_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    package = site / "acme_blocks"
    write_block(package / "blocks", "echo", good(config_schema=SCHEMA))
    (package / "__init__.py").write_text(
        "from pathlib import Path\n"
        "from conv3n.blocks.process import from_manifests\n"
        "BLOCKS = from_manifests(Path(__file__).parent / 'blocks', namespace='acme')\n"
    )
    info = site / "acme_blocks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-blocks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[conv3n.blocks]\nacme = acme_blocks:BLOCKS\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "acme_blocks", raising=False)
    registry = BlockRegistry.discover()
    assert "acme/echo" in registry
    document = {"nodes": [{"id": "n", "type": "acme/echo", "config": {"x": 7}}]}
    record = await run_workflow(document, registry=registry)
    assert record.status.value == "success", record.error
    assert record.output == {"x": 7}
    monkeypatch.delitem(sys.modules, "acme_blocks", raising=False)


@pytest.mark.slow
def test_the_cli_lists_folder_blocks_warns_about_bad_ones_and_runs_them(tmp_path: Path) -> None:
    blocks = tmp_path / "blocks"
    write_block(blocks, "echo", good(config_schema=SCHEMA))
    write_block(blocks, "broken", {"type": "acme/broken"})
    workflow = tmp_path / "wf.yaml"
    workflow.write_text("version: 1\nnodes:\n  - {id: e, type: acme/echo, config: {x: 2}}\n")
    env = {
        **os.environ,
        "CONV3N_DATA_DIR": str(tmp_path / "data"),
        "CONV3N_BLOCKS_DIR": str(blocks),
    }
    conv3n = [sys.executable, "-m", "conv3n"]
    listed = subprocess.run(
        [*conv3n, "blocks", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    schemas = {b["type"]: b["config_schema"] for b in json.loads(listed.stdout)}
    assert schemas["acme/echo"] == SCHEMA
    assert "acme/broken" not in schemas
    assert "skipped a block manifest:" in listed.stderr
    assert "command: required field is missing" in listed.stderr
    ran = subprocess.run(
        [*conv3n, "run", str(workflow), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == {"x": 2}
    assert "Traceback" not in ran.stderr


@pytest.mark.slow
async def test_the_server_lists_and_runs_blocks_of_the_data_dirs_blocks_folder(
    tmp_path: Path,
) -> None:
    import httpx

    from conv3n.api import create_app
    from conv3n.runtime.service import Runtime

    write_block(tmp_path / "blocks", "echo", good(config_schema=SCHEMA))
    async with (
        Runtime(Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})) as runtime,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://conv3n"
        ) as http,
    ):
        listed = (await http.get("/api/blocks")).json()
        assert next(b for b in listed if b["type"] == "acme/echo")["config_schema"] == SCHEMA

        def workflow(x: object) -> dict[str, Any]:
            node = {"id": "e", "type": "acme/echo", "config": {"x": x}}
            return {"version": 1, "nodes": [node]}

        ran = await http.post("/api/run", json={"workflow": workflow(5)})
        assert ran.status_code == 200, ran.text
        assert ran.json()["output"] == {"x": 5}
        invalid = await http.post("/api/run", json={"workflow": workflow("five")})
        assert invalid.status_code == 422
        problems = invalid.json()["error"]["details"]["problems"]
        assert [p["path"] for p in problems] == ["nodes[0].config.x"]
