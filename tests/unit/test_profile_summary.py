"""benchmarks.profile's summary of py-spy's collapsed stacks: phases and inclusive frames."""

from benchmarks.profile import summarise

RAW = """\
process 1:"parallels worker";run (partition.py:90);fetch_inputs (runner.py:78);copyfile (shutil.py:258) 30
process 2:"python step.py infer";<module> (step.py:55);crunch (step.py:18) 60
process 1:"parallels worker";run (partition.py:120);upload (runner.py:119);copy2 (shutil.py:436) 6
process 1:"parallels worker";poll (temporalio/worker/_activity.py:10) 2
process 9:"mlflow server";wrapper (mlflow/server/handlers.py:1384);_get_run (mlflow/server/handlers.py:900) 2
"""


def test_samples_are_split_by_phase_and_frames_counted_once_per_sample(tmp_path):
    raw = tmp_path / "worker.txt"
    raw.write_text(RAW)
    lines = summarise(raw, top=3).splitlines()
    assert lines[0] == "worker.txt: 100 samples"
    phases = {line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1] for line in lines[1:6]}
    assert phases == {
        "step command (user code)": "60.0%",
        "fetch inputs": "30.0%",
        "upload outputs": "6.0%",
        "Temporal SDK": "2.0%",
        "MLflow _get_run": "2.0%",
    }
    assert lines[6] == "  heaviest frames (inclusive):"
    assert [line.split()[1] for line in lines[7:]] == ["<module>", "crunch", "copyfile"]
