"Acceptance: `kddcup24 evaluate` reproduces every official score of the metric fixtures within 1e-6."
import json, subprocess, sys
from pathlib import Path
from conftest import shared

def test_evaluate_matches_official(tmp_path):
    cases = [json.loads(l) for l in (shared("fixtures")/"metric_cases.jsonl").read_text().splitlines() if l.strip()]
    kept = [c for c in cases if c["metric"] != "bool"]
    assert len(kept) > 800
    src = tmp_path/"cases.jsonl"; src.write_text("".join(json.dumps(c) + "\n" for c in kept))
    out = tmp_path/"out.jsonl"
    kd = Path(sys.executable).parent/"kddcup24"
    r = subprocess.run([str(kd), "evaluate", str(src), "--per-record", str(out), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert set(rep) == {"n", "tasks", "task_types", "tracks", "mean", "ci95"} and set(rep["tracks"]) == {"1", "2", "3", "4", "5"}
    assert rep["n"] == len(kept) and set(rep["ci95"]) == {"1", "2", "3", "4", "5", "mean"}
    assert all(lo <= rep["tracks"][k] <= hi for k, (lo, hi) in rep["ci95"].items() if k != "mean")
    got = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(got) == len(kept)
    for c, g in zip(kept, got):
        assert g["case_id"] == c["case_id"]
        assert abs(g["score"] - c["score"]) <= 1e-6, (c["case_id"], c["score"], g["score"])
        assert g["parsed"] == c["parsed"], (c["case_id"], c["parsed"], g["parsed"])
        if c["metric"] == "micro f1": assert g["tp_fp_fn"] == c["tp_fp_fn"], c["case_id"]

def test_bool_metric_is_a_clear_error(tmp_path):
    cases = [json.loads(l) for l in (shared("fixtures")/"metric_cases.jsonl").read_text().splitlines() if l.strip()]
    src = tmp_path/"cases.jsonl"; src.write_text("".join(json.dumps(c) + "\n" for c in cases))
    first_bool = next(i for i, c in enumerate(cases, 1) if c["metric"] == "bool")
    r = subprocess.run([str(Path(sys.executable).parent/"kddcup24"), "evaluate", str(src)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"cases.jsonl:{first_bool}: field 'metric': unknown metric 'bool'" in r.stderr
