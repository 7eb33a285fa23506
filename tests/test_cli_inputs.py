"""Issue 34: nothing lost, nothing silent. Every case a careless or hostile user tried, as code: each asserts exit 2, one
line `kddcup24 CMD: error: ...` naming the file (line, field) where there is one, no traceback, and that nothing was left
behind or deleted (a decoy file in every folder that must survive)."""
import hashlib, json, os
from pathlib import Path
import pytest
import yaml
from conftest import shared
from kddcup24.cli import json_safe, main
from kddcup24.core import OUTPUT_MARK, load_recipe, recipe_dict


def kdd(capsys, *args):
    "Run `kddcup24 ARGS` in this process: (exit code, stdout, stderr); a traceback fails the test by raising."
    try: main([str(a) for a in args]); code = 0
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def state(folder):
    "Every file under `folder` (hidden ones too) with its SHA-256."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def refused(res, *parts):
    "Exit 2 and one error line holding each of `parts`."
    code, out, err = res
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2, (code, out[-500:], err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("kddcup24 ") and ": error: " in lines[0], err[-2000:]
    for p in parts: assert str(p) in lines[0], (p, lines[0])
    return lines[0]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    "A workspace: runs folder under tmp, a finished fake run (tiny Qwen2 as its merged model), a decoy folder and file."
    from kddcup24.models import tiny_qwen2
    from kddcup24.run import update_metrics
    monkeypatch.setenv("KDDCUP24_RUNS", str(tmp_path/"runs"))
    monkeypatch.chdir(tmp_path)
    rd = tmp_path/"runs"/"track3"; rd.mkdir(parents=True)
    (rd/"recipe.yaml").write_text(yaml.safe_dump(recipe_dict(load_recipe("track3"))))
    update_metrics(rd, model_dir=("merged", tiny_qwen2(rd/"merged")))
    (tmp_path/"mine").mkdir(); (tmp_path/"mine"/"decoy.txt").write_text("keep me")
    (tmp_path/"file.txt").write_text("keep me too")
    return tmp_path, rd


def test_output_folders_are_ours(ws, capsys):
    tmp, rd = ws
    before = state(tmp)
    for out, why in ((tmp/"mine", "holds 1 entry (decoy.txt) written by no kddcup24 command"), (rd, "is the input"),
                     (rd.parent, "holds the input"), (rd/"sub", "is inside the input"), (tmp/"file.txt", "is not a folder")):
        refused(kdd(capsys, "submission", "--run", rd, "--out", out), out, why)
        assert state(tmp) == before, out  # nothing deleted, nothing written
    ok = kdd(capsys, "submission", "--run", rd, "--out", tmp/"sub")
    assert ok[0] == 0 and (tmp/"sub"/OUTPUT_MARK).read_text().strip() == "submission", ok
    assert kdd(capsys, "submission", "--run", rd, "--out", tmp/"sub")[0] == 0  # its own earlier output: replaced
    data = shared("data")
    for out, why in ((tmp/"mine", "written by no kddcup24 command"), (tmp/"sub", "written by `kddcup24 submission`, not by `kddcup24 data`"),
                     (data, "is the input"), (data/"x", "is inside the input"), (data.parent, "holds the input"), (tmp/"file.txt", "is not a folder")):
        refused(kdd(capsys, "data", "--track", 5, "--data-dir", data, "--out", out, "--no-plots"), out, why)
    assert state(tmp/"mine") == {"decoy.txt": before["mine/decoy.txt"]} and (tmp/"file.txt").read_text() == "keep me too" and (tmp/"sub"/"aicrowd.json").exists()
    refused(kdd(capsys, "docs", "--out", tmp/"mine", "--no-exec"), tmp/"mine", "written by no kddcup24 command")
    assert (tmp/"mine"/"decoy.txt").read_text() == "keep me"
    assert not [p for p in tmp.rglob(".*") if p.name != OUTPUT_MARK], "a temp file or folder was left behind"


DEV_Q = {"input_field": "Which?\n0. a\n1. b\nAnswer: ", "output_field": 1, "task_type": "multiple-choice", "metric": "accuracy",
         "task_name": "task1", "track": "amazon-kdd-cup-24-understanding-shopping-concepts"}


def write_lines(p, recs):
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8"); return p


def test_evaluate_inputs(ws, capsys):
    tmp, _ = ws
    per = tmp/"per.jsonl"
    good = write_lines(tmp/"good.jsonl", [{**DEV_Q, "input_field": f"Which {i}?\n0. a\n1. b\nAnswer: ", "response": "1"} for i in range(50)])
    cases = [([tmp/"mine"], [tmp/"mine", "folder"])]
    (tmp/"empty.jsonl").write_text("")
    (tmp/"blank.jsonl").write_text("\n  \n\n")
    cases += [([tmp/"empty.jsonl"], [tmp/"empty.jsonl", "no records"]), ([tmp/"blank.jsonl"], [tmp/"blank.jsonl", "no records"])]
    lat = tmp/"latin1.jsonl"
    lat.write_bytes(good.read_bytes() + json.dumps({**DEV_Q, "input_field": "café?", "response": "1"}, ensure_ascii=False).encode("latin-1") + b"\n")
    cases.append(([lat], [f"{lat}:51", "not UTF-8", "0xe9"]))
    nores = write_lines(tmp/"nores.jsonl", [{**DEV_Q, "input_field": f"Q{i}?\n0. a\n1. b\nAnswer: ", **({} if i == 45 else {"response": "1"})} for i in range(50)])
    cases.append(([nores], [f"{nores}:46", "field 'response'", "missing"]))
    other = write_lines(tmp/"other.jsonl", [{**DEV_Q, "input_field": f"Other {i}?\n0. a\n1. b\nAnswer: ", "response": "0"} for i in range(5)])
    cases.append(([good, "--compare", other], ["share no question"]))
    cases.append(([good, "--per-record", good], [good, "is the input"]))
    cases.append(([good, "--plot", tmp/"mine"], [tmp/"mine", "is a folder"]))
    cases.append(([good, "--plot", "/proc/x.png"], ["/proc/x.png"]))
    for args, parts in cases:
        before = state(tmp)
        code, out, err = kdd(capsys, "evaluate", *args, "--per-record", per) if "--per-record" not in args else kdd(capsys, "evaluate", *args)
        refused((code, out, err), *parts)
        assert out == "", (args, out[:300])  # no report printed before the error
        assert state(tmp) == before and not per.exists(), args  # no --per-record, no plot, no temp file
    code, out, _ = kdd(capsys, "evaluate", good, "--json")
    assert code == 0 and "NaN" not in out and json.loads(out)["tracks"]["1"] == 1.0


def test_json_has_no_nan():
    d = json_safe({"mean": float("nan"), "tracks": {"1": 0.5}, "ci": [float("nan"), 1.0]})
    assert d == {"mean": None, "mean_null": "not a number: no record was scored for it", "tracks": {"1": 0.5}, "ci": [None, 1.0]}
    json.dumps(d, allow_nan=False)


def test_recipe_inputs(ws, capsys):
    tmp, _ = ws
    runs = tmp/"runs"; before = state(tmp)
    bad = tmp/"bad.yaml"
    cases = [(["plan", "--track", 5, "--recipe", tmp/"mine"], [tmp/"mine", "is a folder"]),
             (["plan", "--track", 5, "--set", "train.lr=[1"], ["--set 'train.lr=[1'", "not valid YAML"]),
             (["plan", "--track", 5, "--set", "train.lr"], ["--set 'train.lr'", "section.key=value"]),
             (["plan", "--track", 5, "--set", "train.max_steps=-500"], ["--set 'train.max_steps=-500'", "field 'train.max_steps'"]),
             (["plan", "--track", 5, "--set", "train.lr=.nan"], ["field 'train.lr'", "finite"]),
             (["plan", "--track", 5, "--set", "train.lr=-1"], ["field 'train.lr'", "above 0"]),
             (["plan", "--track", 5, "--set", "merge.wise_ft_alpha=1.5"], ["field 'merge.wise_ft_alpha'"]),
             (["plan", "--track", 5, "--set", "quant.bits=3"], ["field 'quant.bits'"]),
             (["plan", "--track", 5, "--set", "quant.group_size=96"], ["field 'quant.group_size'", "power of two"]),
             (["plan", "--track", 2, "--recipe", "track5"], ["--track 2", "track5", "field 'track'"]),
             (["run", "--track", 5, "--set", "train.lr=abc"], ["kddcup24 run: error:", "--set 'train.lr=abc'", "field 'train.lr'"]),
             (["run", "--track", 5, "--stages", "bogus"], ["kddcup24 run: error:", "bogus"]),
             (["run", "--track", 2, "--recipe", "track5", "--stages", "data"], ["kddcup24 run: error:", "--track 2"]),
             (["train", "--track", 5, "--set", "lora.r=0"], ["kddcup24 train: error:", "field 'lora.r'"]),
             # a flag that stands for a recipe field is its `--set`, checked (and blamed) as one
             (["train", "--track", 5, "--steps", -3], ["kddcup24 train: error:", "--set 'train.max_steps=-3'", "field 'train.max_steps'"]),
             (["train", "--track", 3, "--launch", "zero3"], ["kddcup24 train: error:", "--launch trains a GPU recipe: give --recipe track3-gpu"]),
             (["quantize", "--track", 5, "--bits", 3], ["kddcup24 quantize: error:", "--set 'quant.bits=3'", "field 'quant.bits'"]),
             (["ensemble", "--track", 5, "--adapters", "a", "--alpha", 1.5], ["--set 'merge.wise_ft_alpha=1.5'", "field 'merge.wise_ft_alpha'"]),
             (["ensemble", "--track", 5, "--adapters", "a", "--limit", -1], ["--set 'inference.eval_limit=-1'", "field 'inference.eval_limit'"])]
    for text, parts in (("description: no name\n", [f"{bad}: field 'name': missing"]), ("name: x\ntrack: 9\n", [f"{bad}: field 'track'"]),
                        ("name: x\ntrack: 5\ntrain: {lr: -1}\n", [f"{bad}: field 'train.lr'"])):
        bad.write_text(text)
        line = refused(kdd(capsys, "plan", "--track", 5, "--recipe", bad), *parts)
        assert "track5.yaml" not in line, line  # the user's file is blamed, not a shipped recipe
    bad.unlink()
    for args, parts in cases:
        line = refused(kdd(capsys, *args), *parts)
        assert "track5.yaml" not in line, line
    assert state(tmp) == before and sorted(p.name for p in runs.iterdir()) == ["track3"]  # no run folder made by a refused run


def test_shorthands_keep_the_run_folder(ws, capsys):
    "`quantize --limit 2 --bits 4` is `--set`s on the recipe: the stage opens the recipe's run folder (runs/track3), never one of its own."
    tmp, rd = ws
    refused(kdd(capsys, "quantize", "--track", 3, "--limit", 2, "--bits", 4), rd/"data")  # it got as far as the run's (missing) mixture
    assert sorted(p.name for p in (tmp/"runs").iterdir()) == ["track3"]


def test_predict_out_is_not_its_input(ws, capsys):
    tmp, _ = ws
    q = write_lines(tmp/"q.jsonl", [DEV_Q]); before = q.read_bytes()
    refused(kdd(capsys, "predict", "--data", q, "--out", q), q, "is the input")
    assert q.read_bytes() == before
