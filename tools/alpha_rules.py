"""Rules for choosing the wise-ft weight a, compared on one run's answers: each rule's cross-fitted ShopBench dev
track 5 (choose a on one half of dev, report the other half, then swap) against zero-shot, over many random
task-stratified halvings, and the EC-Guide validation score of the model the rule would merge (a chosen on all
of dev). Written to `kddcup24/measured/alpha-rules-track<N>.json`; notebook 05 reads it.

    python tools/alpha_rules.py RUN_DIR [--splits 200] [--out kddcup24/measured/alpha-rules-track5.json]

The per-question scores come from the run (RUN_DIR/scores.json: a = 0 is its zero_shot stage, a = 1 its sft
stage) and from tools/tradeoff.py (RUN_DIR/tradeoff-<a>.json), so every rule is judged on the same answers.
"""

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from kddcup24.core import as_recipe, atomic_write
from kddcup24.ensemble import choose_alpha, dev_halves, overall
from kddcup24.plan import HARDWARE, detect_hardware
from kddcup24.run import git_commit, paired_scores, read_scores
from kddcup24.shopbench import aggregate

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
RULES = {  # name: (grid, what a is chosen on: dev | pooled (dev half and validation together) | valid | fixed)
    "dev, grid 0-1 by 0.25 (the default)": (GRID, "dev"),
    "dev, grid {0, 0.5, 1}": ((0.0, 0.5, 1.0), "dev"),
    "dev, the winners' range {0.25, 0.5, 0.75}": ((0.25, 0.5, 0.75), "dev"),
    "dev and validation pooled, grid 0-1 by 0.25": (GRID, "pooled"),
    "validation, grid 0-1 by 0.25": (GRID, "valid"),
    "fixed a = 0.5": ((0.5,), "fixed"),
}


def t5(qs: list[dict]) -> float:
    "Track 5 (or the mean task score) of per-question scores, aggregated as the official evaluator does."
    return overall(aggregate(qs, qs))


def choose(rule: tuple, dev: dict, valid: dict, ids: set) -> float:
    "The a a rule picks when it may look at the dev questions `ids` (`dev`, `valid`: a -> per-question scores)."
    grid, on = rule
    if on == "fixed":
        return grid[0]
    sub = {a: [q for q in dev[a] if q["id"] in ids] for a in grid}
    if on == "dev":
        return choose_alpha({a: t5(sub[a]) for a in grid})
    if on == "valid":
        return choose_alpha({a: t5(valid[a]) for a in grid})
    return choose_alpha({a: t5(sub[a] + valid[a]) for a in grid})  # pooled: each set's tasks weigh as tasks


def cross_fitted(rule: tuple, dev: dict, valid: dict, halves: list[list[str]]) -> tuple[list[dict], list[float]]:
    "Each dev question's score at the a the rule chose on the other half, and the two a's."
    per_half = [choose(rule, dev, valid, set(halves[1 - h])) for h in (0, 1)]
    half = {i: h for h, hs in enumerate(halves) for i in hs}
    by = {a: {q["id"]: q for q in qs} for a, qs in dev.items()}
    return [by[per_half[half[q["id"]]]][q["id"]] for q in dev[0.0]], per_half


def summarise(xs: list[float]) -> dict:
    "Mean, quartiles, 5th and 95th percentile, and the share at or above zero, of differences over halvings."
    q = statistics.quantiles(xs, n=20)
    return {
        "mean": round(statistics.fmean(xs), 4),
        "p5": round(q[0], 4),
        "p25": round(q[4], 4),
        "median": round(statistics.median(xs), 4),
        "p75": round(q[14], 4),
        "p95": round(q[18], 4),
        "share_not_below": round(sum(x >= -1e-12 for x in xs) / len(xs), 3),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--splits", type=int, default=200, help="random halvings of dev (seeds 0..N-1)")
    p.add_argument("--out")
    a = p.parse_args(argv)
    rd = Path(a.run_dir)
    info = json.loads((rd / "run.json").read_text(encoding="utf-8"))
    track, sc = info["track"], read_scores(rd)
    dev, valid = (
        {0.0: sc["zero_shot"]["dev"], 1.0: sc["sft"]["dev"]},
        {0.0: sc["zero_shot"]["valid"], 1.0: sc["sft"]["valid"]},
    )
    for x in GRID[1:-1]:
        f = rd / f"tradeoff-{x}.json"
        if not f.exists():
            sys.exit(f"{f}: missing; run `python tools/tradeoff.py {rd}` first")
        s = json.loads(f.read_text(encoding="utf-8"))["scores"]
        dev[x], valid[x] = s["dev"], s["valid"]
    seed = as_recipe(info["recipe"], track).data.seed  # the halving the run itself used
    out = Path(a.out or f"kddcup24/measured/alpha-rules-track{track}.json")
    rules = {}
    for name, rule in RULES.items():
        diffs, picks = [], {}
        for s in range(a.splits):
            recs, per_half = cross_fitted(rule, dev, valid, dev_halves(dev[0.0], s))
            diffs.append(t5(recs) - t5(dev[0.0]))
            picks[str(per_half)] = picks.get(str(per_half), 0) + 1
        recs, per_half = cross_fitted(rule, dev, valid, dev_halves(dev[0.0], seed))
        merged = choose(rule, dev, valid, {q["id"] for q in dev[0.0]})
        mean = lambda d: next(x for x in d if x["key"] == "5" or x["key"] == "mean")
        rules[name] = {
            "grid": list(rule[0]),
            "chosen_on": rule[1],
            "cross_fitted_dev_minus_zero_shot": summarise(diffs),
            "alphas_per_half": dict(sorted(picks.items(), key=lambda kv: -kv[1])),
            "at_recipe_seed": {
                "seed": seed,
                "alpha_per_half": per_half,
                "dev_vs_zero_shot": mean(paired_scores(dev[0.0], recs)),
            },
            "merged_alpha": merged,
            "merged_valid_vs_zero_shot": mean(paired_scores(valid[0.0], valid[merged])),
        }
        print(f"{name}: cross-fitted dev {rules[name]['cross_fitted_dev_minus_zero_shot']}, merged a = {merged}")
    body = {
        "command": shlex.join(["python", "tools/alpha_rules.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": HARDWARE[detect_hardware()].note,
        "git_commit": git_commit(),
        "trained_at": info.get("git_commit"),
        "track": track,
        "splits": a.splits,
        "points": {
            str(x): {"dev": round(t5(dev[x]), 4), "valid": round(t5(valid[x]), 4), "n_dev": len(dev[x])} for x in GRID
        },
        "rules": rules,
    }
    atomic_write(out, json.dumps(body, indent=1))


if __name__ == "__main__":
    main()
