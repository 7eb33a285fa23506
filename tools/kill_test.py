"""Kill every pipeline stage with SIGKILL at random moments, rerun it, and check that the run completes with the
scores of an uninterrupted run, leaving no temporary folder behind.

    python tools/kill_test.py [--kills 5] [--stages data train ensemble quantize evaluate] [--data-dir D] [--work DIR]

The run is the short recipe of the README (`kddcup24 run --track 5 --set ...`, about 5 minutes on 2 cores): first once
uninterrupted, stage by stage, with a copy of the run folder after each stage. Then, for each stage and each kill, the
folder as it was before the stage is restored, `kddcup24 run --stages STAGE` is started and its whole process group
killed (`kill -9`) after a random share (10-90%) of the stage's uninterrupted time, and the same command is run again.
It prints one table: kills, reruns that completed, reruns whose scores equal the uninterrupted run's, kills after which
the stage wrongly read as complete, leftover temporary files, and the seconds each rerun took next to the stage's own.
"""
import argparse, json, os, random, shutil, signal, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["data", "train", "ensemble", "quantize", "evaluate"]
NAME = "kill-test"
# the README's short run: 4 SFT steps with a checkpoint every 2, 16 validation records, 8 questions per scored set
SHORT = ["train.max_steps=4", "train.save_steps=2", "data.valid_size=16", "inference.eval_limit=8",
         "merge.wise_ft_grid=[0.5, 1.0]", "quant.calibration_samples=2", "quant.max_seq_length=64"]

def command(stage:str, data:str) -> list[str]:
    "The `kddcup24 run` command of one stage of the short run."
    exe = Path(sys.executable).parent/"kddcup24"
    return [str(exe), "run", "--track", "5", "--name", NAME, "--stages", stage, "--data-dir", data, *sum((["--set", s] for s in SHORT), [])]

def run(stage:str, root:Path, data:str, log:Path, kill_after:float|None=None) -> tuple[int|None, float]:
    "Run one stage with `root` as `KDDCUP24_RUNS`; kill its process group after `kill_after` s. Return (exit status or None if killed, seconds)."
    env = {**os.environ, "KDDCUP24_RUNS": str(root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count()))}
    t0 = time.time()
    with open(log, "a") as f:
        p = subprocess.Popen(command(stage, data), env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try: return p.wait(timeout=kill_after), time.time() - t0
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL); p.wait()
            return None, time.time() - t0

def scores(rd:Path) -> dict:
    "What a stage decides, timings left out: every stage's dev and validation reports, the wise-ft a, the model folders."
    m = json.loads((rd/"metrics.json").read_text()) if (rd/"metrics.json").exists() else {"stages": {}, "model_dirs": {}}
    keep = lambda r: {k: r[k] for k in ("tasks", "task_types", "tracks") if r and k in r}
    return {"stages": {s: {"dev": keep(e), "valid": keep(e.get("valid")), "alpha": e.get("alpha")} for s, e in m["stages"].items()},
            "model_dirs": sorted(m.get("model_dirs", {})), "ablation": (rd/"ablation.png").exists()}

def leftovers(rd:Path) -> list[str]:
    "Temporary files and folders (`.name.*`) in the run folder and one level below."
    return sorted(str(p.relative_to(rd)) for p in [*rd.glob(".*"), *rd.glob("*/.*")] if p.name != ".ipynb_checkpoints")

def same(got:dict, want:dict) -> bool:
    "Whether a trial's scores equal the uninterrupted run's on every stage the trial has reached (later ones have not run)."
    return got == {**want, "stages": {s: v for s, v in want["stages"].items() if s in got["stages"]},
                   "model_dirs": [d for d in want["model_dirs"] if d in got["model_dirs"]], "ablation": got["ablation"]}

def stage_done(stage:str, rd:Path) -> bool:
    "The pipeline's own completion check of a stage."
    from kddcup24.pipeline import PIPELINE as P
    return next(s for s in P if s.name == stage).done(rd)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=5, help="random kills per stage")
    ap.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    ap.add_argument("--data-dir", default=os.environ.get("KDDCUP24_DATA"), help="data folder (default KDDCUP24_DATA)")
    ap.add_argument("--work", default="/tmp/kill_test", help="scratch folder (replaced)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the table here")
    a = ap.parse_args()
    if not a.data_dir: ap.error("--data-dir or KDDCUP24_DATA is required")
    work, rng = Path(a.work), random.Random(a.seed)
    shutil.rmtree(work, ignore_errors=True); (work/"snap").mkdir(parents=True)
    ref, log = work/"ref", work/"log.txt"
    # the uninterrupted run, stage by stage, with the folder copied before each stage
    took, before = {}, {}
    for st in STAGES:
        before[st] = work/"snap"/st
        shutil.copytree(ref, before[st]) if ref.exists() else before[st].mkdir()
        rc, took[st] = run(st, ref, a.data_dir, log)
        if rc: sys.exit(f"the uninterrupted {st} stage failed (exit {rc}); see {log}")
        print(f"uninterrupted {st}: {took[st]:.0f} s", file=sys.stderr)
    want = scores(ref/NAME)
    rows = []
    for st in a.stages:
        row = dict(stage=st, kills=0, reran=0, identical=0, wrongly_complete=0, leftovers=0, stage_s=round(took[st], 1), rerun_s=[])
        for k in range(a.kills):
            trial = work/"trial"; shutil.rmtree(trial, ignore_errors=True); shutil.copytree(before[st], trial)
            at = rng.uniform(0.1, 0.9) * took[st]
            rc, _ = run(st, trial, a.data_dir, log, kill_after=at)
            row["kills"] += rc is None
            rd = trial/NAME
            if rc is None and stage_done(st, rd) and not same(scores(rd), want): row["wrongly_complete"] += 1
            rc, secs = run(st, trial, a.data_dir, log)
            got = scores(rd)
            row["reran"] += rc == 0
            row["identical"] += rc == 0 and same(got, want) and stage_done(st, rd)
            row["leftovers"] += bool(leftovers(rd))
            row["rerun_s"].append(round(secs, 1))
            print(f"{st} kill {k + 1}: at {at:.0f} s, rerun exit {rc} in {secs:.0f} s, leftovers {leftovers(rd)}", file=sys.stderr)
        rows.append(row)
        if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))  # after every stage: a long run's partial table survives
    print(f"{'stage':<10}{'kills':>6}{'reran':>7}{'identical':>10}{'wrongly complete':>18}{'leftovers':>10}{'stage s':>9}  rerun s")
    for r in rows:
        print(f"{r['stage']:<10}{r['kills']:>6}{r['reran']:>7}{r['identical']:>10}{r['wrongly_complete']:>18}{r['leftovers']:>10}{r['stage_s']:>9}  {r['rerun_s']}")
    ok = all(r["kills"] == r["reran"] == r["identical"] == a.kills and not r["wrongly_complete"] and not r["leftovers"] for r in rows)
    sys.exit(0 if ok else 1)

if __name__ == "__main__": main()
