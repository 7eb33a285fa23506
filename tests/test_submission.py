"""Issue 16, item 5: `kddcup24 submission` output runs under a harness written to the starter kit's interface, in a fresh
process from the submission folder, and its answers score as `kddcup24 predict` + `kddcup24 evaluate` of the same model."""
import json, subprocess, sys
from pathlib import Path
import yaml
from conftest import shared
from kddcup24.core import load_recipe, recipe_dict
from kddcup24.models import tiny_qwen2
from kddcup24.run import update_metrics

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
    update_metrics(rd, model_dir=("awq", tiny_qwen2(rd/"awq")))
    r = subprocess.run([KD, "submission", "--run", str(rd), "--out", str(tmp_path/"sub")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    sub = tmp_path/"sub"
    assert json.loads((sub/"aicrowd.json").read_text())["challenge_id"] == "amazon-kdd-cup-24-all-around"

    dev = shared("data")/"shopbench"/"development.json"
    (sub/"harness.py").write_text(HARNESS)
    h = subprocess.run([sys.executable, "harness.py", str(dev), str(tmp_path/"kit.jsonl")], cwd=sub, capture_output=True, text=True, timeout=900)
    assert h.returncode == 0, h.stderr[-3000:]
    assert h.stdout.strip().endswith(str(sub/"kddcup24"/"__init__.py"))  # the package shipped with the submission, not the install

    p = subprocess.run([KD, "predict", "--model", str(rd/"awq"), "--recipe", str(rd/"recipe.yaml"), "--data", str(dev),
                        "--out", str(tmp_path/"ours.jsonl")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    kit, ours = _scores(tmp_path/"kit.jsonl"), _scores(tmp_path/"ours.jsonl")
    assert kit.keys() == ours.keys()
    diff = {k: (kit[k], ours[k]) for k in kit if abs(kit[k] - ours[k]) > 1e-6}
    assert not diff, diff
