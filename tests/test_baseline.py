"Acceptance: the vanilla zero-shot SmolLM2-135M on the 96 dev questions reproduces the official baseline (track 5 ≈ 0.126)."
import json, subprocess, sys
from pathlib import Path
from conftest import shared

def test_vanilla_baseline(tmp_path):
    dev = shared("data")/"shopbench"/"development.json"
    kd = str(Path(sys.executable).parent/"kddcup24")
    pred = tmp_path/"pred.jsonl"
    r = subprocess.run([kd, "predict", "--model", "smollm2-135m", "--data", str(dev), "--out", str(pred), "--batch-size", "16", "--recipe", "vanilla"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    recs = [json.loads(l) for l in pred.read_text().splitlines()]
    assert len(recs) == 96 and all(isinstance(x["response"], str) for x in recs)
    r = subprocess.run([kd, "evaluate", str(pred), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    t5 = json.loads(r.stdout)["tracks"]["5"]
    print("track 5:", t5)
    assert abs(t5 - 0.126) <= 0.03, t5
