import random

import pytest

from parallels import partitioning as pt
from parallels.partitioning import FileEntry, InputListing
from parallels.spec import PartitionMode


def files(sizes, root=0, prefix="f"):
    return [FileEntry(root=root, path=f"{prefix}{i:05d}.bin", size=s) for i, s in enumerate(sizes)]


def listing(fs, mode=PartitionMode.BY_FILE, name="data", roots=("runs:/r/output",)):
    return InputListing(name=name, mode=mode, roots=list(roots), files=fs)


def test_every_file_exactly_once_and_balanced():
    rng = random.Random(1)
    fs = files([rng.randint(1, 10_000) for _ in range(1000)])
    m = pt.plan([listing(fs)], 7)
    assert m.partition_count == 7
    seen = sorted(i for a in m.inputs[0].assignments for i in a)
    assert seen == list(range(1000))
    loads = [sum(fs[i].size for i in a) for a in m.inputs[0].assignments]
    # Greedy LPT is within the largest item of perfect balance.
    assert max(loads) - min(loads) <= max(f.size for f in fs)


def test_plan_is_deterministic_regardless_of_listing_order():
    fs = files([5, 3, 3, 9, 1, 7, 7, 2])
    a = pt.plan([listing(fs)], 3)
    b = pt.plan([listing(list(fs))], 3)
    assert pt.manifest_bytes(a) == pt.manifest_bytes(b)
    assert pt.digest(pt.manifest_bytes(a)) == pt.digest(pt.manifest_bytes(b))


def test_fewer_files_than_parallelism_caps_partitions():
    m = pt.plan([listing(files([1, 1, 1]))], 10)
    assert m.partition_count == 3
    assert all(len(a) == 1 for a in m.inputs[0].assignments)


def test_empty_partitioned_input_runs_one_empty_partition():
    m = pt.plan([listing([])], 4)
    assert m.partition_count == 1
    assert m.files_for("data", 0)[1] == []


def test_no_partitioned_input_runs_parallelism_copies_with_everything():
    fs = files([1, 2, 3])
    m = pt.plan([listing(fs, PartitionMode.BROADCAST)], 4)
    assert m.partition_count == 4
    assert all(m.files_for("data", i)[1] == fs for i in range(4))


def test_broadcast_beside_partitioned_goes_to_every_partition():
    model = listing(files([100], prefix="model"), PartitionMode.BROADCAST, name="model")
    m = pt.plan([listing(files([1] * 10)), model], 3)
    for i in range(3):
        assert [f.path for f in m.files_for("model", i)[1]] == ["model00000.bin"]
    assert sum(len(m.files_for("data", i)[1]) for i in range(3)) == 10


def test_by_directory_keeps_directories_together():
    fs = [
        FileEntry(root=0, path=f"{d}/{i}.png", size=10)
        for d, n in (("cats", 6), ("dogs", 3), ("birds", 3))
        for i in range(n)
    ] + [FileEntry(root=0, path="README", size=1)]
    m = pt.plan([listing(fs, PartitionMode.BY_DIRECTORY)], 3)
    groups = [{fs[i].path.split("/")[0] for i in a} for a in m.inputs[0].assignments]
    assert sorted(len(g) for g in groups) == [1, 1, 2]
    assert {"cats"} in groups  # the biggest directory alone
    assert sum(len(a) for a in m.inputs[0].assignments) == len(fs)


def test_files_from_several_roots_stay_distinct():
    fs = files([1, 1], root=0) + files([1, 1], root=1)
    m = pt.plan([listing(fs, roots=("runs:/a/output", "runs:/b/output"))], 2)
    pairs = sorted((f.root, f.path) for i in range(2) for f in m.files_for("data", i)[1])
    assert pairs == sorted((f.root, f.path) for f in fs)


def test_two_partitioned_inputs_are_refused():
    with pytest.raises(ValueError):
        pt.plan([listing(files([1])), listing(files([1]), name="other")], 2)


def test_summary_counts():
    m = pt.plan([listing(files([10, 20, 30]))], 2)
    assert pt.summary(m) == {"partitions": 2, "files": 3, "bytes": 60}


def _listing(*files: tuple[int, str]) -> InputListing:
    return InputListing(
        name="x",
        mode=PartitionMode.BROADCAST,
        roots=["r0", "r1"],
        files=[FileEntry(root=r, path=p, size=1) for r, p in files],
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([(0, "a.txt"), (1, "b.txt"), (0, "d/a.txt")], None),
        ([(0, "part.csv"), (1, "part.csv")], ("part.csv", "part.csv")),
        ([(0, "d"), (1, "d/x")], ("d", "d/x")),  # a file where the other root has a directory
        ([(0, "d/x"), (1, "d")], ("d/x", "d")),
        ([(0, "d/x"), (1, "d/y"), (1, "e/z")], None),  # directories may be shared
    ],
)
def test_paths_of_different_roots_that_would_collide(files, expected):
    found = pt.clash(_listing(*files))
    assert (found and (found[0].path, found[1].path)) == expected
    if found:
        assert found[0].root != found[1].root
