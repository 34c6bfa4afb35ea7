"""std/file on a real folder: every operation, confinement to the files root, limits."""

import base64
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from conv3n.engine import Engine, EngineOptions
from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, NodeRecord
from conv3n.testing import run_block, run_workflow


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The files root (created by the block on first use; made here to arrange files)."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the root holding a secret the block must never reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret")
    return folder


async def _file(root: Path, **config: Any) -> NodeRecord:
    return await run_block("std/file", config, options=EngineOptions(files_root=root))


async def _ok(root: Path, **config: Any) -> Any:
    result = await _file(root, **config)
    assert result.status == "success", result.error
    return result.data


async def _refused(root: Path, **config: Any) -> str:
    result = await _file(root, **config)
    assert result.status == "error", result.data
    assert result.error is not None
    return result.error.message


async def _invalid_at(**config: Any) -> list[str]:
    """Where compiling a node with this literal config reports problems."""
    with pytest.raises(WorkflowInvalid) as invalid:
        await run_block("std/file", config)
    return [problem.where for problem in invalid.value.problems]


# --- read and write ------------------------------------------------------------------------


async def test_write_then_read_round_trips_text(root: Path):
    written = await _ok(root, operation="write", path="notes/a.txt", content="héllo\nwörld")
    assert written == {"path": "notes/a.txt", "size": len("héllo\nwörld".encode()), "created": True}
    assert (root / "notes" / "a.txt").read_text(encoding="utf-8") == "héllo\nwörld"
    read = await _ok(root, operation="read", path="notes/a.txt")
    assert read == {
        "path": "notes/a.txt",
        "content": "héllo\nwörld",
        "encoding": "utf-8",
        "size": 13,
    }


async def test_base64_round_trips_binary_bytes(root: Path):
    payload = bytes(range(256)) * 4
    encoded = base64.b64encode(payload).decode()
    await _ok(root, operation="write", path="blob.bin", content=encoded, encoding="base64")
    assert (root / "blob.bin").read_bytes() == payload
    read = await _ok(root, operation="read", path="blob.bin", encoding="base64")
    assert base64.b64decode(read["content"]) == payload
    assert read["size"] == 1024


async def test_read_with_another_encoding_decodes_it(root: Path):
    (root / "latin.txt").write_bytes("café".encode("latin-1"))
    read = await _ok(root, operation="read", path="latin.txt", encoding="latin-1")
    assert read["content"] == "café"
    assert read["encoding"] == "iso8859-1"


async def test_binary_read_as_text_fails_pointing_at_base64(root: Path):
    (root / "img.bin").write_bytes(b"\xff\xd8\xff\xe0")
    message = await _refused(root, operation="read", path="img.bin")
    assert "not valid utf-8" in message
    assert "base64" in message


async def test_non_string_content_is_written_as_json(root: Path):
    await _ok(root, operation="write", path="data.json", content={"a": [1, 2], "b": None})
    assert (root / "data.json").read_text() == '{"a": [1, 2], "b": null}'


async def test_write_replaces_an_existing_file_by_default(root: Path):
    (root / "a.txt").write_text("old")
    written = await _ok(root, operation="write", path="a.txt", content="new")
    assert written["created"] is False
    assert (root / "a.txt").read_text() == "new"
    assert sorted(p.name for p in root.iterdir()) == ["a.txt"]  # no temporary file left


async def test_write_without_overwrite_refuses_an_existing_file(root: Path):
    (root / "a.txt").write_text("old")
    message = await _refused(root, operation="write", path="a.txt", content="new", overwrite=False)
    assert "already exists" in message
    assert (root / "a.txt").read_text() == "old"


async def test_write_without_overwrite_creates_a_new_file(root: Path):
    await _ok(root, operation="write", path="n/b.txt", content="x", overwrite=False)
    assert (root / "n" / "b.txt").read_text() == "x"


async def test_missing_root_is_created(tmp_path: Path):
    root = tmp_path / "not" / "yet"
    await _ok(root, operation="write", path="a.txt", content="x")
    assert (root / "a.txt").read_text() == "x"


async def test_reading_a_missing_file_names_it(root: Path):
    message = await _refused(root, operation="read", path="nope/missing.txt")
    assert message == "'nope/missing.txt' does not exist"


async def test_reading_a_directory_fails_clearly(root: Path):
    (root / "d").mkdir()
    assert "is a directory" in await _refused(root, operation="read", path="d")


async def test_writing_over_a_directory_fails_clearly(root: Path):
    (root / "d").mkdir()
    assert "is a directory" in await _refused(root, operation="write", path="d", content="x")


async def test_reading_a_fifo_fails_instead_of_hanging(root: Path):
    os.mkfifo(root / "pipe")
    assert "not a regular file" in await _refused(root, operation="read", path="pipe")


async def test_file_access_off_without_a_files_root():
    result = await run_block("std/file", {"operation": "exists", "path": "a"})
    assert result.status == "error"
    assert result.error is not None
    assert "file access is off" in result.error.message


# --- size limits ----------------------------------------------------------------------------


async def test_a_file_over_max_bytes_fails_without_being_read(root: Path):
    big = root / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    result = await _file(root, operation="read", path="big.bin", max_bytes=1024)
    assert result.status == "error"
    assert result.error is not None
    assert "more than max_bytes" in result.error.message
    assert result.error.details["size"] == 50 * 1024 * 1024
    assert result.error.details["max_bytes"] == 1024


async def test_the_default_read_limit_refuses_a_50_mb_file(root: Path):
    with (root / "big.bin").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    assert "more than max_bytes" in await _refused(root, operation="read", path="big.bin")


async def test_content_over_max_bytes_is_not_written(root: Path):
    message = await _refused(
        root, operation="write", path="a.txt", content="x" * 101, max_bytes=100
    )
    assert "more than max_bytes" in message
    assert not (root / "a.txt").exists()


async def test_max_bytes_has_a_hard_cap():
    where = await _invalid_at(operation="read", path="a", max_bytes=10 * 1024**3)
    assert where == ["nodes[0].config.max_bytes"]


# --- append ---------------------------------------------------------------------------------


async def test_append_creates_then_extends_a_file(root: Path):
    first = await _ok(root, operation="append", path="log/app.log", content="one\n")
    assert first == {"path": "log/app.log", "appended": 4, "size": 4}
    second = await _ok(root, operation="append", path="log/app.log", content="two\n")
    assert second == {"path": "log/app.log", "appended": 4, "size": 8}
    assert (root / "log" / "app.log").read_text() == "one\ntwo\n"


async def test_concurrent_appends_from_50_nodes_lose_no_line(root: Path):
    line = "{{ $item }}:" + "x" * 2000 + "\n"
    document = {
        "nodes": [
            {
                "id": "each",
                "type": "std/loop",
                "config": {
                    "items": list(range(50)),
                    "concurrency": 50,
                    "body": {
                        "nodes": [
                            {
                                "id": "add",
                                "type": "std/file",
                                "config": {"operation": "append", "path": "c.log", "content": line},
                            }
                        ]
                    },
                },
            }
        ]
    }
    record = await run_workflow(document, options=EngineOptions(files_root=root))
    assert record.status == "success", record.error
    lines = (root / "c.log").read_text().splitlines()
    assert len(lines) == 50
    assert sorted(int(text.split(":")[0]) for text in lines) == list(range(50))
    assert all(text.endswith("x" * 2000) for text in lines)


# --- list -----------------------------------------------------------------------------------


async def test_list_matches_a_recursive_glob_relative_to_the_root(root: Path):
    for name in ("a.csv", "b.txt", "sub/c.csv", "sub/deep/d.csv", "sub/e.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("12345")
    listed = await _ok(root, operation="list", pattern="**/*.csv")
    assert [entry["path"] for entry in listed["files"]] == ["a.csv", "sub/c.csv", "sub/deep/d.csv"]
    assert listed["count"] == 3
    assert listed["truncated"] is False
    first = listed["files"][0]
    assert first["type"] == "file"
    assert first["size"] == 5
    assert first["mtime"].endswith("+00:00")


async def test_list_of_a_folder_with_a_flat_pattern_does_not_descend(root: Path):
    for name in ("r/2024-01.json", "r/2024-02.json", "r/x.json", "r/old/2023-01.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    listed = await _ok(root, operation="list", path="r", pattern="2024-??.json")
    assert [entry["path"] for entry in listed["files"]] == ["r/2024-01.json", "r/2024-02.json"]


async def test_list_default_pattern_shows_top_level_files_and_folders(root: Path):
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_text("")
    (root / "top.txt").write_text("")
    listed = await _ok(root, operation="list")
    assert [(e["path"], e["type"]) for e in listed["files"]] == [
        ("sub", "directory"),
        ("top.txt", "file"),
    ]


async def test_list_character_classes_match_within_a_name(root: Path):
    for name in ("a1.txt", "b2.txt", "c3.txt"):
        (root / name).write_text("")
    listed = await _ok(root, operation="list", pattern="[!b]?.txt")
    assert [e["path"] for e in listed["files"]] == ["a1.txt", "c3.txt"]


async def test_list_with_many_files_is_bounded_by_limit(root: Path):
    for index in range(300):
        (root / f"f{index:04}.txt").write_text("")
    listed = await _ok(root, operation="list", pattern="*.txt", limit=100)
    assert listed["count"] == 100
    assert listed["truncated"] is True
    assert listed["files"][0]["path"] == "f0000.txt"
    assert listed["files"][-1]["path"] == "f0099.txt"


async def test_list_limit_has_a_hard_cap():
    assert await _invalid_at(operation="list", limit=1_000_000) == ["nodes[0].config.limit"]


@pytest.mark.parametrize("pattern", ["../*", "../../etc/*", "/etc/*", "a/../../*", "\x00"])
async def test_list_patterns_that_try_to_leave_the_root_are_refused(pattern: str):
    assert await _invalid_at(operation="list", pattern=pattern) == ["nodes[0].config.pattern"]


async def test_list_does_not_follow_links_out_of_the_root(root: Path, outside: Path):
    (root / "away").symlink_to(outside, target_is_directory=True)
    (root / "secret-link").symlink_to(outside / "secret.txt")
    (root / "mine.txt").write_text("")
    listed = await _ok(root, operation="list", pattern="**")
    assert [e["path"] for e in listed["files"]] == ["mine.txt"]


# --- delete, exists, move -------------------------------------------------------------------


async def test_delete_removes_a_file(root: Path):
    (root / "a.txt").write_text("x")
    assert await _ok(root, operation="delete", path="a.txt") == {"path": "a.txt", "deleted": True}
    assert not (root / "a.txt").exists()


async def test_delete_of_a_missing_file_fails_unless_missing_ok(root: Path):
    assert "does not exist" in await _refused(root, operation="delete", path="gone.txt")
    deleted = await _ok(root, operation="delete", path="gone.txt", missing_ok=True)
    assert deleted == {"path": "gone.txt", "deleted": False}


async def test_delete_removes_an_empty_directory_only_without_recursive(root: Path):
    (root / "empty").mkdir()
    (root / "full").mkdir()
    (root / "full" / "a.txt").write_text("x")
    await _ok(root, operation="delete", path="empty")
    assert not (root / "empty").exists()
    assert "not empty" in await _refused(root, operation="delete", path="full")
    await _ok(root, operation="delete", path="full", recursive=True)
    assert not (root / "full").exists()


async def test_delete_of_a_link_removes_the_link_not_its_target(root: Path, outside: Path):
    (root / "link").symlink_to(outside / "secret.txt")
    await _ok(root, operation="delete", path="link")
    assert not (root / "link").is_symlink()
    assert (outside / "secret.txt").read_text() == "top secret"


async def test_recursive_delete_does_not_follow_links_inside(root: Path, outside: Path):
    (root / "tree").mkdir()
    (root / "tree" / "away").symlink_to(outside, target_is_directory=True)
    await _ok(root, operation="delete", path="tree", recursive=True)
    assert (outside / "secret.txt").exists()


async def test_deleting_the_root_itself_is_refused():
    assert await _invalid_at(operation="delete", path=".") == ["nodes[0].config.path"]


async def test_exists_reports_type_and_size(root: Path):
    (root / "d").mkdir()
    (root / "d" / "a.txt").write_text("abc")
    file_info = await _ok(root, operation="exists", path="d/a.txt")
    assert file_info["exists"] is True
    assert file_info["type"] == "file"
    assert file_info["size"] == 3
    assert (await _ok(root, operation="exists", path="d"))["type"] == "directory"
    missing = await _ok(root, operation="exists", path="d/nope/x")
    assert missing == {
        "path": "d/nope/x",
        "exists": False,
        "type": None,
        "size": None,
        "mtime": None,
    }


async def test_move_renames_into_a_new_folder(root: Path):
    (root / "a.txt").write_text("x")
    moved = await _ok(root, operation="move", path="a.txt", to="archive/2024/a.txt")
    assert moved == {"path": "archive/2024/a.txt", "from": "a.txt"}
    assert (root / "archive" / "2024" / "a.txt").read_text() == "x"
    assert not (root / "a.txt").exists()


async def test_move_without_overwrite_keeps_the_destination(root: Path):
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    message = await _refused(root, operation="move", path="a.txt", to="b.txt", overwrite=False)
    assert "'b.txt' already exists" in message
    assert (root / "b.txt").read_text() == "b"


async def test_move_of_a_missing_file_names_it(root: Path):
    assert await _refused(root, operation="move", path="x", to="y") == "'x' does not exist"


@pytest.mark.parametrize("to", ["../stolen.txt", "/tmp/stolen.txt", "a/../../b"])
async def test_move_out_of_the_root_is_refused(to: str):
    assert await _invalid_at(operation="move", path="a.txt", to=to) == ["nodes[0].config.to"]


async def test_move_through_a_link_out_of_the_root_is_refused(root: Path, outside: Path):
    (root / "a.txt").write_text("mine")
    (root / "away").symlink_to(outside, target_is_directory=True)
    message = await _refused(root, operation="move", path="a.txt", to="away/a.txt")
    assert "outside the files root" in message
    assert not (outside / "a.txt").exists()
    assert (root / "a.txt").exists()


# --- hostile paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../etc/passwd",
        "..",
        "C:\\Windows\\win.ini",
        "\\\\srv\\x",
    ],
)
async def test_paths_leaving_the_root_are_refused_at_config_path(path: str):
    assert await _invalid_at(operation="read", path=path) == ["nodes[0].config.path"]


async def test_nul_bytes_in_a_path_are_refused():
    assert await _invalid_at(operation="read", path="a\x00.txt") == ["nodes[0].config.path"]


@pytest.mark.parametrize("path", ["a/" * 600, "x" * 300, "d/" + "é" * 200])
async def test_very_long_paths_and_names_are_refused(path: str):
    assert await _invalid_at(operation="write", path=path, content="x") == ["nodes[0].config.path"]


async def test_hostile_path_from_an_expression_fails_the_node_as_config_invalid(root: Path):
    document = {
        "nodes": [
            {"id": "f", "type": "std/file", "config": {"operation": "read", "path": "{{ $input }}"}}
        ]
    }
    record = await run_workflow(document, "../etc/passwd", options=EngineOptions(files_root=root))
    node = record.nodes["f"]
    assert node.status == "error"
    assert node.error is not None
    assert node.error.type == "config_invalid"
    assert "`..`" in node.error.message


async def test_a_file_link_pointing_outside_is_refused(root: Path, outside: Path):
    (root / "passwd").symlink_to(outside / "secret.txt")
    message = await _refused(root, operation="read", path="passwd")
    assert "outside the files root" in message
    assert "top secret" not in message
    assert str(outside) not in message


async def test_writing_through_a_file_link_pointing_outside_is_refused(root: Path, outside: Path):
    (root / "passwd").symlink_to(outside / "secret.txt")
    await _refused(root, operation="write", path="passwd", content="pwned")
    await _refused(root, operation="append", path="passwd", content="pwned")
    assert (outside / "secret.txt").read_text() == "top secret"


async def test_a_directory_link_pointing_outside_is_refused(root: Path, outside: Path):
    (root / "etc").symlink_to(outside, target_is_directory=True)
    assert "outside the files root" in await _refused(root, operation="read", path="etc/secret.txt")
    await _refused(root, operation="write", path="etc/new.txt", content="x")
    await _refused(root, operation="list", path="etc")
    await _refused(root, operation="exists", path="etc/secret.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


async def test_a_chain_of_links_ending_outside_is_refused(root: Path, outside: Path):
    (root / "one").symlink_to("two")
    (root / "two").symlink_to("sub/three")
    (root / "sub").mkdir()
    (root / "sub" / "three").symlink_to(outside / "secret.txt")
    assert "outside the files root" in await _refused(root, operation="read", path="one")


async def test_a_link_loop_fails_cleanly(root: Path):
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    message = await _refused(root, operation="read", path="a")
    assert "symbolic link" in message


async def test_links_that_stay_inside_the_root_work(root: Path):
    (root / "data").mkdir()
    (root / "data" / "real.txt").write_text("inside")
    (root / "alias").symlink_to("data", target_is_directory=True)
    (root / "current.txt").symlink_to("data/real.txt")
    assert (await _ok(root, operation="read", path="alias/real.txt"))["content"] == "inside"
    assert (await _ok(root, operation="read", path="current.txt"))["content"] == "inside"


async def test_a_link_swapped_in_after_the_check_is_not_followed(root: Path, outside: Path):
    # The race the walk defends against: resolve `d/secret.txt` (d a real folder), then d is
    # replaced by a link out of the root before the file is opened. Simulated by resolving
    # first and swapping second, then opening through the resolved place.
    from conv3n.blocks.std import paths

    (root / "d").mkdir()
    (root / "d" / "secret.txt").write_text("inside")
    confined = paths.Root(root)
    place = confined.locate("d/secret.txt")
    (root / "d" / "secret.txt").unlink()
    (root / "d").rmdir()
    (root / "d").symlink_to(outside, target_is_directory=True)
    with (
        pytest.raises(OSError, match=r"symbolic links|Not a directory") as raised,
        confined.parent(place),
    ):
        pass
    assert raised.value.errno in (errno.ELOOP, errno.ENOTDIR)  # refused, not followed


# --- config ---------------------------------------------------------------------------------


async def test_unknown_operation_and_encoding_are_reported_at_their_fields():
    assert await _invalid_at(operation="chmod", path="a") == ["nodes[0].config.operation"]
    assert await _invalid_at(operation="read", path="a", encoding="klingon") == [
        "nodes[0].config.encoding"
    ]


async def test_write_without_content_and_move_without_to_are_reported():
    assert await _invalid_at(operation="write", path="a") == ["nodes[0].config.content"]
    assert await _invalid_at(operation="move", path="a") == ["nodes[0].config.to"]
    assert await _invalid_at(operation="read") == ["nodes[0].config.path"]


async def test_invalid_base64_content_fails_clearly(root: Path):
    message = await _refused(
        root, operation="write", path="a", content="not base64!", encoding="base64"
    )
    assert message == "content is not valid base64"


async def test_file_nodes_share_one_engine_across_operations(root: Path):
    steps: list[JSON] = [
        {
            "id": "w",
            "type": "std/file",
            "config": {"operation": "write", "path": "x", "content": "1"},
        },
        {"id": "r", "type": "std/file", "config": {"operation": "read", "path": "x"}},
    ]
    document = {"nodes": steps, "connections": [{"from": "w", "to": "r"}]}
    async with Engine(options=EngineOptions(files_root=root)) as engine:
        record = await run_workflow(document, engine=engine)
    assert record.status == "success", record.error
    assert record.output == {"path": "x", "content": "1", "encoding": "utf-8", "size": 1}


async def test_list_stops_scanning_a_huge_tree_and_says_truncated(
    root: Path, monkeypatch: pytest.MonkeyPatch
):
    from conv3n.blocks.std import listing

    monkeypatch.setattr(listing, "MAX_SCANNED", 20)
    for index in range(30):
        (root / f"f{index:02}.log").write_text("")
    listed = await _ok(root, operation="list", pattern="**/*.csv")
    assert listed == {"files": [], "count": 0, "truncated": True}


async def test_concurrent_overwrites_leave_one_whole_version_and_no_temporary_files(root: Path):
    body = {
        "nodes": [
            {
                "id": "put",
                "type": "std/file",
                "config": {
                    "operation": "write",
                    "path": "same.txt",
                    "content": "{{ $item * 500 }}",
                },
            }
        ]
    }
    items = [chr(ord("a") + i) for i in range(20)]
    loop = {"items": items, "concurrency": 20, "body": body}
    document = {"nodes": [{"id": "each", "type": "std/loop", "config": loop}]}
    record = await run_workflow(document, options=EngineOptions(files_root=root))
    assert record.status == "success", record.error
    content = (root / "same.txt").read_text()
    assert content in {letter * 500 for letter in items}
    assert [p.name for p in root.iterdir()] == ["same.txt"]
