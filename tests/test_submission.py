"""Issue 16, item 5: `kddcup24 submission` output runs under a harness written to the starter kit's interface, in a fresh
process from the submission folder, and its answers score as `kddcup24 predict` + `kddcup24 evaluate` of the same model."""
import json, subprocess, sys
from pathlib import Path
import yaml
from conftest import shared
from kddcup24.core import load_recipe, recipe_dict
from kddcup24.models import tiny_qwen2
from kddcup24.run import update_metrics
from kddcup24.engine import call_limit

KD = str(Path(sys.executable).parent/"kddcup24")

# The kit's local_evaluation.py in miniature: UserModel() with no arguments, get_batch_size(), questions grouped by
# task type into batches of that size, batch_predict({"prompt": [...]}, is_multiple_choice), answers merged back on input_field.
HARNESS = '''
import json, sys
from collections import defaultdict
from models.user_config import UserModel
qs = [json.loads(l) for l in open(sys.argv[1])]
model = UserModel()
bs = model.get_batch_size()
assert isinstance(bs, int) and 1 <= bs <= 16, bs
by = defaultdict(list)
for q in qs: by[q["task_type"]].append(q)
answers = {}
for t, group in by.items():
    for i in range(0, len(group), bs):
        b = group[i:i + bs]
        out = model.batch_predict({"prompt": [q["input_field"] for q in b]}, t == "multiple-choice")
        assert isinstance(out, list) and len(out) == len(b) and all(isinstance(x, str) for x in out), out
        answers.update({q["input_field"]: a for q, a in zip(b, out)})
with open(sys.argv[2], "w") as f:
    for q in qs: f.write(json.dumps({**q, "response": answers[q["input_field"]]}) + "\\n")
import kddcup24; print(kddcup24.__file__)
'''


def _scores(path):
    r = subprocess.run([KD, "evaluate", str(path), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return {k: t["score"] for k, t in json.loads(r.stdout)["tasks"].items()}


def test_submission_runs_under_the_kit_harness(tmp_path):
    rd = tmp_path/"runs"/"track5"; rd.mkdir(parents=True)
    (rd/"recipe.yaml").write_text(yaml.safe_dump(recipe_dict(load_recipe("track5"))))
    update_metrics(rd, model_dir=("quantize", tiny_qwen2(rd/"quantize")))
    r = subprocess.run([KD, "submission", "--run", str(rd), "--out", str(tmp_path/"sub")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    sub = tmp_path/"sub"
    assert json.loads((sub/"aicrowd.json").read_text())["challenge_id"] == "amazon-kdd-cup-24-all-around"
    assert f"TIME_LIMIT = {call_limit(5, 16)!r}  #" in (sub/"models"/"user_config.py").read_text()  # track 5's limit, per call

    dev = shared("data")/"shopbench"/"development.json"
    (sub/"harness.py").write_text(HARNESS)
    h = subprocess.run([sys.executable, "harness.py", str(dev), str(tmp_path/"kit.jsonl")], cwd=sub, capture_output=True, text=True, timeout=900)
    assert h.returncode == 0, h.stderr[-3000:]
    assert h.stdout.strip().endswith(str(sub/"kddcup24"/"__init__.py"))  # the package shipped with the submission, not the install

    p = subprocess.run([KD, "predict", "--model", str(rd/"quantize"), "--recipe", str(rd/"recipe.yaml"), "--data", str(dev),
                        "--out", str(tmp_path/"ours.jsonl")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    kit, ours = _scores(tmp_path/"kit.jsonl"), _scores(tmp_path/"ours.jsonl")
    assert kit.keys() == ours.keys()
    diff = {k: (kit[k], ours[k]) for k in kit if abs(kit[k] - ours[k]) > 1e-6}
    assert not diff, diff


# Issue 33: the submission keeps a time limit. A fresh process imports the folder's `UserModel` as the kit does and sends three
# calls of generation prompts; the engine's time guard measures the cost on the first and, with no time left, cuts the others.
PROBE = '''
import json
from models.user_config import TIME_LIMIT, UserModel
model = UserModel()
gen = {"prompt": ["Instructions: Describe a toggle switch.\\nOutput: ", "Instructions: Describe a dog leash.\\nOutput: "]}
out = [model.batch_predict(gen, False) for _ in range(3)]
print(json.dumps({"limit": TIME_LIMIT, "stats": model.model.stats, "budgets": model.model.engine.budgets, "answers": out}))
'''


def test_submission_time_limit_cuts_and_counts(tmp_path):
    rd = tmp_path/"runs"/"track2"; rd.mkdir(parents=True)
    r2 = load_recipe("track2")
    (rd/"recipe.yaml").write_text(yaml.safe_dump(recipe_dict(r2)))
    update_metrics(rd, model_dir=("merged", tiny_qwen2(rd/"merged")))
    r = subprocess.run([KD, "submission", "--run", str(rd), "--out", str(tmp_path/"sub"), "--time-limit", "1e-9"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    sub = tmp_path/"sub"
    (sub/"probe.py").write_text(PROBE)
    p = subprocess.run([sys.executable, "probe.py"], cwd=sub, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["limit"] == 1e-9
    assert res["budgets"] == [["generation", r2.inference.max_new_tokens["generation"]], ["generation", 1], ["generation", 1]], res
    assert res["stats"] == {"truncated": 0, "fallbacks": 0, "shortened": 4}, res  # two calls of two prompts cut
    assert all(isinstance(a, str) for o in res["answers"] for a in o) and res["answers"][1] == res["answers"][2], res
