"""The trade-off the winners faced, measured on one trained run: ShopBench dev and EC-Guide validation at each
wise-ft weight a (W = (1-a)·W_base + a·W_ft of the run's final adapter), written point by point to
`kddcup24/measured/tradeoff-track<N>.json` (notebook 05 draws it beside the learning curve).

    python tools/tradeoff.py RUN_DIR [--alphas 0.25 0.5 0.75] [--out kddcup24/measured/tradeoff-track5.json]

a = 0 and a = 1 are the run's zero-shot and SFT stages, read from its metrics; every other a is scored on both sets,
and its per-question scores go to RUN_DIR/tradeoff-<a>.json (beside the run's scores.json, which holds a = 0 and 1)
so that rules for choosing a can be compared on the same answers (tools/alpha_rules.py).
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from kddcup24.core import as_recipe, atomic_write
from kddcup24.plan import HARDWARE, detect_hardware
from kddcup24.run import ModelRef, eval_sets, git_commit, read_metrics, score


def point(a: float, dev: dict, valid: dict, seconds: float | None = None) -> dict:
    "One a's track-5 (or track) scores and intervals on both sets."
    pick = lambda r: {"n": r["n"], "tracks": r["tracks"], "ci95": r["ci95"]}
    return {"alpha": a, "dev": pick(dev), "valid": pick(valid), **({"seconds": seconds} if seconds else {})}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    p.add_argument("--data-dir")
    p.add_argument("--out")
    a = p.parse_args(argv)
    rd = Path(a.run_dir)
    info = json.loads((rd / "run.json").read_text(encoding="utf-8"))
    track, stages = info["track"], read_metrics(rd)["stages"]
    rc = as_recipe(info["recipe"], track)
    out = Path(a.out or f"kddcup24/measured/tradeoff-track{track}.json")
    sets = eval_sets(track, rd, a.data_dir)
    body = {
        "command": shlex.join(["python", "tools/tradeoff.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": HARDWARE[detect_hardware()].note,
        "git_commit": git_commit(),
        "trained_at": info.get("git_commit"),
        "track": track,
        "recipe": info["recipe"],
        "examples": info["steps"] * info["examples_per_step"],
        "points": [
            point(0.0, stages["zero_shot"], stages["zero_shot"]["valid"]),
            point(1.0, stages["sft"], stages["sft"]["valid"]),
        ],
    }
    for x in a.alphas:  # each point written as it finishes: a stopped run keeps what it measured
        ref = ModelRef(rc.model.base, adapter=str(rd / "sft"), alpha=x, name=f"wise_ft_{x}")
        t0 = time.time()
        res = score(sets, [ref], rc)[ref.label]
        per = {k: res[k]["_records"] for k in ("dev", "valid")}
        atomic_write(rd / f"tradeoff-{x}.json", json.dumps({"alpha": x, "scores": per}))
        body["points"].append(point(x, res["dev"], res["valid"], round(time.time() - t0, 1)))
        body["points"].sort(key=lambda q: q["alpha"])
        atomic_write(out, json.dumps(body, indent=1))
        print(f"a = {x}: dev {res['dev']['tracks'][str(track)]:.3f}, valid {res['valid']['tracks'][str(track)]:.3f}")


if __name__ == "__main__":
    main()
