"""Resource faults (issue 17, item 4): a disk that fills and a folder that turns read-only stop a stage with one clear
line and leave the last good state intact. Needs a small tmpfs, so it runs where `mount` is allowed (root in CI's
container) and is skipped elsewhere."""
import hashlib, os, shutil, subprocess, sys, uuid
from pathlib import Path
import pytest
from conftest import ROOT, shared

KDD = [str(Path(sys.executable).parent/"kddcup24")]  # the console script of the environment running the tests
FILES = ["MCQ/QPRJ.json", "Generation/PE.json"]  # two small EC-Guide files: the data stage in seconds


@pytest.fixture
def small_disk(tmp_path):
    "A 16 MiB tmpfs, unmounted afterwards; the test is skipped where mounting is not allowed."
    mnt = tmp_path/"disk"; mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _data_dir(tmp_path):
    src, d = shared("data"), tmp_path/"data"
    (d/"shopbench").mkdir(parents=True); shutil.copy(src/"shopbench"/"development.json", d/"shopbench")
    for f in FILES: (d/"ec-guide"/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy(src/"ec-guide"/f, d/"ec-guide"/f)
    return d


def _state(folder):
    "Every file under `folder` with its SHA-256 (hidden temp files included)."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def _kdd(*args, env=None):
    e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(KDD + list(args), capture_output=True, text=True, env=e, cwd=ROOT, timeout=600)


def _fill(mnt):
    "Fill the disk to its last byte (unbuffered writes of shrinking size)."
    with open(mnt/"filler", "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while True: f.write(b"\0" * size)
            except OSError: pass


def test_full_and_read_only_disk(small_disk, tmp_path):
    data, out = _data_dir(tmp_path), small_disk/"run"/"data"
    args = ["data", "--track", "5", "--data-dir", str(data), "--out", str(out), "--no-plots", "--set", "data.allow_missing=true"]
    ok = _kdd(*args)
    assert ok.returncode == 0, ok.stderr[-3000:]
    good = _state(small_disk/"run")
    assert "data/train.jsonl" in good and "data/card.json" in good

    _fill(small_disk)
    full = _kdd(*args, "--set", "data.seed=7")  # another mixture: every file would be rewritten
    assert full.returncode == 1, (full.returncode, full.stderr[-3000:])
    assert f"cannot write {small_disk}" in full.stderr and "No space left on device" in full.stderr and "last good state is intact" in full.stderr, full.stderr[-3000:]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    assert _state(small_disk/"run") == good  # the finished mixture untouched, no temp file left beside it

    (small_disk/"filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    ro = _kdd(*args, "--set", "data.seed=7")
    assert ro.returncode == 1 and "Read-only file system" in ro.stderr and "Traceback" not in ro.stderr, ro.stderr[-3000:]
    assert _state(small_disk/"run") == good

    # the pipeline stops before any stage: its run folder cannot take the recipe file
    run = _kdd("run", "--track", "5", "--stages", "data", "--name", f"ro-{uuid.uuid4().hex[:6]}", "--data-dir", str(data),
               env={"KDDCUP24_RUNS": str(small_disk/"runs")})
    assert run.returncode == 1 and "Read-only file system" in run.stderr and "Traceback" not in run.stderr, run.stderr[-3000:]

    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    again = _kdd(*args, "--set", "data.seed=7")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _state(small_disk/"run") != good and not [p for p in _state(small_disk/"run") if "/." in "/" + p and not p.endswith("/.kddcup24-output")]  # no temp file; the output marker stays


def test_truncated_model_is_named(tmp_path):
    "A model folder whose weights were cut short is refused at load, naming the file."
    from kddcup24.models import tiny_qwen2, load_model, CorruptWeights
    d = tiny_qwen2(tmp_path/"m")
    f = d/"model.safetensors"; f.write_bytes(f.read_bytes()[:-4096])
    with pytest.raises(CorruptWeights, match="model.safetensors: .* bytes where its header promises .*truncated"): load_model(d)
    r = _kdd("predict", "--model", str(d), "--data", str(shared("data")/"shopbench"/"development.json"), "--out", str(tmp_path/"p.jsonl"), "--limit", "1")
    assert r.returncode == 2 and "model.safetensors" in r.stderr and "truncated" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/"p.jsonl").exists()
