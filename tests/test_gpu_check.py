"""tools/gpu_check.py, the GPU check of the pipeline's stage functions, run on a CPU (issue 33 item 8): on the tiny scale every step
but the QLoRA load runs and passes, the results are a measurement file (`command`, `git_commit`, `machine`) with the plan beside
each step, a broken step makes it exit 1, and the GPU scales' plan figures (Qwen2-7B's config on 1xH200) are computable here."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT/"tools"/"gpu_check.py"
STEPS = ["setup", "a.", "b1.", "b2.", "c1.", "c2.", "d.", "e."]

def _run(tmp_path, *args, name="out"):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "GPU_CHECK_COMMIT": "0123456789abcdef0123456789abcdef01234567"}
    env.pop("GPU_CHECK_BUDGET", None)
    out = tmp_path/f"{name}.json"
    p = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--workdir", str(tmp_path/name), "--json", str(out), *args],
                       capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    return p, (json.loads(out.read_text()) if out.exists() else None)

def _status(res):
    "The status of each step, keyed by its label (`setup`, `a.`, `b1.`, ...)."
    return {s: next(r["status"] for r in res["steps"] if r["step"].startswith(s)) for s in STEPS}

def test_cpu_run_passes_and_writes_a_measurement(tmp_path, monkeypatch):
    p, res = _run(tmp_path)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert _status(res) == {"setup": "ok", "a.": "skipped", "b1.": "ok", "b2.": "ok", "c1.": "ok", "c2.": "ok", "d.": "ok", "e.": "ok"}, res["steps"]
    # the project's reader of measurements accepts it
    import kddcup24.core as core
    monkeypatch.setattr(core, "measured_dir", lambda: tmp_path)
    m = core.measured("out")
    assert m["git_commit"] == "0123456789abcdef0123456789abcdef01234567" and m["command"].startswith("python tools/gpu_check.py --device cpu")
    assert m["machine"].startswith("this machine") and m["scale"] == "tiny" and m["counts"] == {"ok": 7, "skipped": 1, "FAILED": 0}
    rows = {r["step"].split(" ")[0]: r for r in m["steps"]}
    # what was checked, in the steps' own words
    assert "global_step 2 -> 4 (steps 3..4 run)" in rows["b2."]["detail"]
    assert "MLP 320 padded to 512" in rows["d."]["detail"] and "intermediate_size_unpadded 320" in rows["d."]["detail"]
    # the plan beside each measured step: the stage row and the like-for-like term
    for k, stage in (("b1.", "train"), ("b2.", "train"), ("c1.", "ensemble"), ("c2.", "ensemble"), ("d.", "quantize")):
        pl = rows[k]["plan"]
        assert pl["stage_row"] == stage and pl["stage_minutes"] >= 0 and pl["like_seconds"] is not None and pl["how"], (k, pl)
    assert set(m["plan_stages"]) == {"synthetic", "data", "zero_shot", "train", "ensemble", "quantize", "evaluate"}
    assert m["plan"]["hardware"] == "cpu" and m["model"]["intermediate"] == 320
    assert "measured vs the plan on cpu" in p.stdout

def test_a_broken_step_fails_the_run(tmp_path):
    "No record fits train.max_length=8: training FAILS, what needs its adapters is skipped, AWQ still runs on the base, exit 1."
    p, res = _run(tmp_path, "--set", "train.max_length=8", name="broken")
    assert p.returncode == 1, p.stdout[-4000:] + p.stderr[-4000:]
    st = _status(res)
    assert st == {"setup": "ok", "a.": "skipped", "b1.": "FAILED", "b2.": "skipped", "c1.": "skipped", "c2.": "skipped", "d.": "ok", "e.": "ok"}, res["steps"]
    assert "no training record fits train.max_length=8" in next(r["detail"] for r in res["steps"] if r["step"].startswith("b1."))
    assert "1 FAILED" in p.stdout

def test_a_spent_budget_is_not_a_pass(tmp_path):
    "Steps left out for want of time make the run exit 1 (INCOMPLETE), with the JSON still written."
    p, res = _run(tmp_path, "--budget", "0.001", name="late")
    assert p.returncode == 1 and "INCOMPLETE" in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
    assert all(r["status"] == "skipped" for r in res["steps"]) and res["git_commit"]

def test_gpu_scales_plan_figures(tmp_path):
    "The figures the GPU run prints beside its steps, for Qwen2-7B's config and the small scale on 1xH200 (no weights built)."
    code = f"""
import json, sys
sys.argv = ["gpu_check.py", "--device", "cuda"]
sys.path.insert(0, {str(ROOT/'tools')!r})
import gpu_check as g
from pathlib import Path
from transformers import AutoConfig
from kddcup24.models import tiny_qwen2
from kddcup24.gpu import padded_intermediate
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(tiny_qwen2({str(tmp_path/'tok')!r}, hidden=32))
out = {{}}
for sc in ("7b", "small"):
    d = g.scale_config(sc, tok); f = Path({str(tmp_path)!r})/sc
    AutoConfig.for_model(d.pop("model_type"), **d).save_pretrained(f); tok.save_pretrained(f)
    P = g.plan_for(f); q = g.recipe(f).quant
    out[sc] = dict(P=P, awq=g.awq_terms(f, q), pad=padded_intermediate(P["shape"]["intermediate"], g.ARGS.tp, q.group_size))
print(json.dumps(out))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    b7, sm = out["7b"], out["small"]
    assert b7["P"]["hardware"] == "1xH200" and b7["P"]["fits"] and abs(b7["P"]["shape"]["params"] - 7.62e9) < 0.01e9
    assert b7["P"]["shape"]["intermediate"] == 18944 and b7["pad"] == 18944     # 37 x 128 x 4: tensor parallel 4 needs no padding
    assert sm["P"]["shape"]["intermediate"] == 29568 and sm["pad"] == 29696     # Qwen2-72B's MLP: padded, as the winners' model
    assert sm["P"]["shape"]["hidden"] == 3584 and sm["P"]["shape"]["layers"] == 2 and sm["P"]["shape"]["vocab"] == 152064
    for x in (b7, sm):
        P = x["P"]
        assert {"train", "ensemble", "quantize"} <= set(P["stages"]) and 0 < P["base_gib"] < P["train_gpu_gib"] < 139
        assert P["train_s_per_token"] > 0 and P["train_s_per_example"] > 0 and x["awq"]["gpu_gib"] > 0 and x["awq"]["published_rate_s"] > 0
        assert "lora.load_in_4bit=true" in P["overrides"] and "model.dtype=bfloat16" in P["overrides"]
