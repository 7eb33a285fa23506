"""Adapters of one base scored on the same questions, alone and averaged, and paired: the average against each
adapter, each adapter against the first. The ensemble stage's question (does averaging pay?) asked of adapters that
come from different runs (seeds, disjoint shards of the mixture: `train.shard`). Written to a measured file
(e.g. kddcup24/measured/ensemble-shards-track5.json, read by notebook 05).

    python tools/compare_adapters.py RUN_A RUN_B ... --track 5 --what "..." --out FILE [--no-average | --average-of B C]

`--average-of` averages only the runs it names (folder names), so that one run can be the reference the average is
paired against at equal training compute: `RUN_FULL RUN_HALF0 RUN_HALF1 --average-of RUN_HALF0 RUN_HALF1`, the first
run's adapter against the average of two trained on half its steps each (`vs_first`).

A run is a training run folder (`kddcup24 train --run-dir ...`): its `sft/` adapter is scored, its `run.json` says how
it was trained, and the mixture it trained on (`--mixture`, default the first run's `data/`) gives the validation split.
"""

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from kddcup24.core import as_recipe, atomic_write
from kddcup24.ensemble import average_lora
from kddcup24.plan import HARDWARE, detect_hardware
from kddcup24.run import (
    ModelRef,
    dev_questions,
    git_commit,
    load_mixture,
    mixture_for_track,
    paired_scores,
    score,
    summary,
)


def pairs(recs: dict, against: str, split: str) -> dict:
    "Every model's paired difference from `against` on `split`: `{model: [{key, n, diff, ci95}]}`."
    return {m: paired_scores(recs[against][split], r[split]) for m, r in recs.items() if m != against}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="training run folders, each with sft/ and run.json")
    p.add_argument("--track", type=int, default=5)
    p.add_argument(
        "--recipe",
        help="the recipe whose base and inference settings score the adapters (default: the first run's recipe.yaml)",
    )
    p.add_argument("--data-dir", help="data folder (default KDDCUP24_DATA)")
    p.add_argument(
        "--mixture",
        help="the mixture folder the runs trained on (`kddcup24 train --mixture`; default: the first run's data/)",
    )
    p.add_argument("--limit", type=int, default=0, help="the first N questions of each set only (a smoke test)")
    p.add_argument("--no-average", action="store_true", help="score the adapters alone only")
    p.add_argument(
        "--average-of", nargs="+", metavar="RUN", help="average only these runs (folder names; default: all of them)"
    )
    p.add_argument("--what", required=True, help="what the adapters are, in words")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    runs = [Path(x) for x in a.runs]
    for rd in runs:
        if not (rd / "sft" / "adapter_config.json").exists():
            p.error(f"{rd}: no trained adapter (sft/adapter_config.json)")  # bad input: one line, exit 2
    if a.average_of and (a.no_average or not set(a.average_of) <= {rd.name for rd in runs} or len(a.average_of) < 2):
        p.error(f"--average-of {' '.join(a.average_of)}: name at least two of the runs given, without --no-average")
    r = as_recipe(a.recipe or runs[0] / "recipe.yaml", a.track)
    mix = Path(a.mixture) if a.mixture else runs[0] / "data"
    if not (mix / "card.json").exists():
        p.error(f"{mix}: no mixture (card.json) to take the validation split from; give --mixture")
    valid = mixture_for_track(load_mixture(mix)[1], a.track)
    sets = {k: v[: a.limit or None] for k, v in {"dev": dev_questions(a.track, a.data_dir), "valid": valid}.items()}
    refs = [ModelRef(r.model.base, adapter=str(rd / "sft"), name=rd.name) for rd in runs]
    with tempfile.TemporaryDirectory() as tmp:
        if not a.no_average:
            refs.append(
                ModelRef(
                    r.model.base,
                    adapter=str(
                        average_lora(
                            [x.adapter for x in refs if not a.average_of or x.label in a.average_of], Path(tmp) / "avg"
                        )
                    ),
                    name="average",
                )
            )
        res = score(sets, refs, r)
    recs = {x.label: {k: res[x.label][k]["_records"] for k in sets} for x in refs}
    first = refs[0].label
    info = {rd.name: json.loads((rd / "run.json").read_text(encoding="utf-8")) for rd in runs}
    body = {
        "command": shlex.join(["python", "tools/compare_adapters.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": HARDWARE[detect_hardware()].note,
        "git_commit": git_commit(),
        "what": a.what,
        "average_of": None if a.no_average else (a.average_of or [rd.name for rd in runs]),
        "adapters": {
            n: {
                k: i.get(k)
                for k in ("git_commit", "recipe", "shard", "seed", "steps", "train_seconds", "tokens_per_second")
            }
            | {"examples": i.get("steps", 0) * i.get("examples_per_step", 0)}
            for n, i in info.items()
        },
        "scores": {x.label: {k: summary(res[x.label][k]) for k in sets} for x in refs},
        "seconds": {x.label: {k: res[x.label].get(f"{k}_s") for k in sets} for x in refs},
        "vs_first": {k: pairs(recs, first, k) for k in sets},
        **(
            {
                "average_minus": {
                    k: {m: paired_scores(recs[m][k], recs["average"][k]) for m in recs if m != "average"} for k in sets
                }
            }
            if not a.no_average
            else {}
        ),
        "note": "diff: B - A on the same questions with its paired bootstrap 95% interval; vs_first: each model minus "
        "the first adapter; average_minus: the average minus each adapter",
    }
    atomic_write(a.out, json.dumps(body, indent=1))
    for k in sets:
        print(k, {m: s[k]["tracks"].get(str(a.track)) for m, s in body["scores"].items()})


if __name__ == "__main__":
    sys.exit(main())
