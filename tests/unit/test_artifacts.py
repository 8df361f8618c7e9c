"""Input fetching never writes outside the partition's input directory."""

import pytest

from parallels.artifacts import Fetcher, list_files, safe_relative
from parallels.errors import InputError


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", "..", ""])
def test_unsafe_paths_refused(bad):
    with pytest.raises(InputError):
        safe_relative(bad)


def test_list_and_fetch_local(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("aa")
    (src / "sub" / "b.txt").write_text("bbb")
    listed = list_files(str(src))
    assert [(f.path, f.size) for f in listed] == [("a.txt", 2), ("sub/b.txt", 3)]
    dest = tmp_path / "in"
    dest.mkdir()
    with Fetcher(tmp_path) as fetcher:
        got = fetcher.fetch(str(src), "sub/b.txt", dest)
        again = fetcher.fetch(str(src), "a.txt", dest)
    assert got.read_text() == "bbb" and got == (dest / "sub" / "b.txt").resolve()
    assert again.read_text() == "aa"
    # Nothing is left staged, and nothing was staged inside the input directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "src"]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "a.txt",
        "sub",
        "sub/b.txt",
    ]


def test_fetch_refuses_escape_and_symlinked_dirs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").mkdir()
    (src / "x" / "f").write_text("data")
    dest = tmp_path / "in"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "x").symlink_to(outside)  # planted by an earlier, malicious file
    with Fetcher(tmp_path) as fetcher:
        with pytest.raises(InputError):
            fetcher.fetch(str(src), "x/f", dest)
        assert not (outside / "f").exists()
        with pytest.raises(InputError):
            fetcher.fetch(str(src), "../src/x/f", dest)
        # A file planted as a symlink pointing outside is refused, not written through.
        (dest / "g").symlink_to(outside / "g")
        (src / "g").write_text("new")
        with pytest.raises(InputError):
            fetcher.fetch(str(src), "g", dest)
        assert not (outside / "g").exists()
        # A file listed at planning time but gone by now is a clear input error.
        with pytest.raises(InputError, match="no longer"):
            fetcher.fetch(str(src), "gone.txt", dest)


def test_missing_and_file_inputs_are_clear(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list_files(str(tmp_path / "nope"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        list_files(str(tmp_path / "f"))
