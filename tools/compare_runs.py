"""Two runs of the same track compared stage by stage on the questions both answered: each stage's track scores,
its mean score per task type, and the paired difference B - A with its 95% interval, on dev and validation.
Written to a measured file (e.g. kddcup24/measured/mixture-mc-track5.json, read by notebook 04).

    python tools/compare_runs.py RUN_A RUN_B --what "..." [--stages zero_shot sft] --out FILE

A run is a run folder (`runs/track5`) or a published report with scores.json beside its metrics.
"""

import argparse
import json
import shlex
import sys
from collections import defaultdict
from pathlib import Path

from kddcup24.core import atomic_write
from kddcup24.plan import HARDWARE, detect_hardware
from kddcup24.run import git_commit, paired_scores, read_metrics, read_scores


def by_type(qs: list[dict]) -> dict:
    "Questions and mean score per task type (micro-F1 questions by their own score: a summary, not the metric)."
    acc = defaultdict(list)
    for q in qs:
        acc[q["task_type"]].append(q["score"])
    return {t: {"n": len(v), "mean": round(sum(v) / len(v), 4)} for t, v in sorted(acc.items())}


def side(rd: Path, stage: str, split: str) -> dict:
    "One run's stage on one split: its track scores and per-type means."
    st = read_metrics(rd)["stages"][stage]
    rep = st if split == "dev" else st.get("valid", {})
    return {"tracks": rep.get("tracks"), "ci95": rep.get("ci95"), "by_type": by_type(read_scores(rd)[stage][split])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--what", required=True, help="what differs between A and B, in words")
    p.add_argument("--stages", nargs="+", default=["zero_shot", "sft"])
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    runs = {k: Path(v) for k, v in (("a", a.run_a), ("b", a.run_b))}
    info = {k: json.loads((rd / "run.json").read_text(encoding="utf-8")) for k, rd in runs.items()}
    body = {
        "command": shlex.join(["python", "tools/compare_runs.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": HARDWARE[detect_hardware()].note,
        "git_commit": git_commit(),
        "what": a.what,
        "runs": {
            k: {
                "folder": str(runs[k]),
                "git_commit": info[k].get("git_commit"),
                "recipe": info[k].get("recipe"),
                "track": info[k].get("track"),
                "train_precision": info[k].get("train_precision"),
                "steps": info[k].get("steps"),
                "examples": info[k].get("steps", 0) * info[k].get("examples_per_step", 0),
                "train_seconds": info[k].get("train_seconds"),
                "tokens_per_second": info[k].get("tokens_per_second"),
                "type_weights": json.loads((runs[k] / "data" / "card.json").read_text())["data"]["type_weights"]
                if (runs[k] / "data" / "card.json").exists()
                else None,
            }
            for k in runs
        },
        "stages": {},
    }
    for stage in a.stages:
        for split in ("dev", "valid"):
            sa, sb = (read_scores(runs[k])[stage][split] for k in ("a", "b"))
            body["stages"].setdefault(stage, {})[split] = {
                "a": side(runs["a"], stage, split),
                "b": side(runs["b"], stage, split),
                "b_minus_a": paired_scores(sa, sb),
            }
    atomic_write(a.out, json.dumps(body, indent=1))
    tk = str(info["a"].get("track", 5))  # the runs' own track
    for stage, d in body["stages"].items():
        for split, x in d.items():
            t = next(c for c in x["b_minus_a"] if c["key"] == tk)
            print(f"{stage} {split}: B - A = {t['diff']:+.3f} [{t['ci95'][0]:+.3f}, {t['ci95'][1]:+.3f}] (track {tk})")


if __name__ == "__main__":
    main()
