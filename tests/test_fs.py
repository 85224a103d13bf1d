"""Walking, reading and placing outputs (dnnjpeg._fs)."""

from __future__ import annotations

import os

import pytest

from dnnjpeg._fs import (
    NotRegularFileError,
    UnsafeOutputError,
    describe_error,
    display,
    read_json,
    read_regular,
    safe_output_path,
    walk,
    walk_files,
)


def test_walk_reports_what_it_will_not_enter_and_never_loops(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"x")
    (tmp_path / "a" / "up").symlink_to("..")  # a loop through a parent link
    (tmp_path / "self.jpg").symlink_to("self.jpg")
    os.mkfifo(tmp_path / "p.jpg")
    (tmp_path / "note.txt").write_text("hi")
    got = dict(walk(tmp_path))
    assert got[str(tmp_path / "a" / "x.jpg")] is None
    assert got[str(tmp_path / "a" / "up")] == "symlink to a folder, not followed"
    assert "FIFO" in got[str(tmp_path / "p.jpg")]
    assert got[str(tmp_path / "self.jpg")] is None  # a loop fails when opened, with its own error
    files, problems = walk_files(tmp_path, {".jpg"})
    assert files == [str(tmp_path / "self.jpg"), str(tmp_path / "a" / "x.jpg")]
    assert sorted(p for p, _ in problems) == [str(tmp_path / "a" / "up"), str(tmp_path / "p.jpg")]


def test_names_that_are_not_utf8_are_kept_and_shown(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg")
    with open(raw, "wb") as f:
        f.write(b"data")
    (path,) = walk_files(tmp_path)[0]
    assert os.fsencode(path) == raw and read_regular(path) == b"data"
    shown = display(path)
    assert shown.endswith("caf\\xe9.jpg") and shown.encode("utf-8")  # printable, no surrogates


def test_safe_output_path_refuses_links_and_src(tmp_path):
    src, dst = (tmp_path / "s").resolve(), (tmp_path / "d").resolve()
    (src / "x").mkdir(parents=True)
    dst.mkdir()
    assert safe_output_path(dst, dst / "new" / "deeper" / "a.jpg", src) == dst / "new" / "deeper" / "a.jpg"
    assert (dst / "new" / "deeper").is_dir()
    (dst / "x").symlink_to(src / "x")
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        safe_output_path(dst, dst / "x" / "a.jpg", src)
    (dst / "f.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        safe_output_path(dst, dst / "f.jpg", src)
    (dst / "file").write_bytes(b"")
    with pytest.raises(UnsafeOutputError, match="not a folder"):
        safe_output_path(dst, dst / "file" / "a.jpg", src)
    assert not (tmp_path / "elsewhere.jpg").exists()


def test_read_json_refuses_fifos_and_names_bad_files(tmp_path):
    os.mkfifo(tmp_path / "p.json")
    with pytest.raises(NotRegularFileError):
        read_json(tmp_path / "p.json")
    (tmp_path / "b.json").write_bytes(b"{nope")
    with pytest.raises(ValueError, match="b.json: not a JSON file"):
        read_json(tmp_path / "b.json")
    e = NotRegularFileError(tmp_path / "p.json", "FIFO")
    assert describe_error(e) == "NotRegularFileError: not a regular file (FIFO)"
