"""The file trigger's rules without a watcher: which folder it may watch, how changes become
one event per file, and how patterns match."""

from pathlib import Path

import pytest
from watchfiles import Change

from conv3n.errors import InvalidInput
from conv3n.triggers.file import events_of, matches, watched_folder


def test_a_relative_folder_is_under_the_files_root(tmp_path: Path):
    (tmp_path / "in").mkdir()
    assert watched_folder("in", tmp_path) == (tmp_path / "in").resolve()
    assert watched_folder(str(tmp_path / "in"), tmp_path) == (tmp_path / "in").resolve()


@pytest.mark.parametrize("path", ["..", "../x", "/etc", "in/../../"])
def test_a_folder_leaving_the_files_root_is_refused(tmp_path: Path, path: str):
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="outside the files root"):
        watched_folder(path, root)


def test_a_symlink_leaving_the_files_root_is_refused(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidInput, match="outside the files root"):
        watched_folder("link", root)


def test_a_missing_folder_or_a_file_is_refused(tmp_path: Path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidInput, match="does not exist"):
        watched_folder("nope", tmp_path)
    with pytest.raises(InvalidInput, match="is not a folder"):
        watched_folder("file.txt", tmp_path)


def test_changes_become_one_event_per_file(tmp_path: Path):
    (tmp_path / "new.csv").write_text("x")
    (tmp_path / "old.csv").write_text("x")
    (tmp_path / "sub").mkdir()
    changes = {
        (Change.added, str(tmp_path / "new.csv")),
        (Change.modified, str(tmp_path / "new.csv")),
        (Change.modified, str(tmp_path / "old.csv")),
        (Change.deleted, str(tmp_path / "gone.csv")),
        (Change.added, str(tmp_path / "sub")),  # folders start nothing
        (Change.added, str(tmp_path.parent / "outside.csv")),
    }
    assert events_of(changes, tmp_path) == [
        ("deleted", tmp_path / "gone.csv"),
        ("created", tmp_path / "new.csv"),
        ("modified", tmp_path / "old.csv"),
    ]


def test_patterns_match_the_name_or_the_relative_path(tmp_path: Path):
    deep = tmp_path / "in" / "2026" / "a.csv"
    assert matches(None, deep, tmp_path)
    assert matches("*.csv", deep, tmp_path)
    assert not matches("*.txt", deep, tmp_path)
    assert matches("in/*.csv", deep, tmp_path)
    assert not matches("out/*.csv", deep, tmp_path)
    assert not matches("[", deep, tmp_path)  # a malformed glob matches nothing, never raises
