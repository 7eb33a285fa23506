"""The time guard under load: `ShopBenchModel.batch_predict` on real dev questions under the submission's per-call limit,
first on an idle machine, then while busy-loop processes (one per core) saturate the CPU.

    KDDCUP24_DATA=/work/shared/data .venv/bin/python tools/time_guard_load.py [--limit S] [--loaded-max 300] [--note TEXT] [--out FILE]

The model is the embedded SmolLM2-135M (`load_model("smollm2-135m")`) behind `ShopBenchModel` with the track5 recipe, as
`models/user_config.py` builds it; the limit is the submission's own (`call_limit(5, 16)`, track 5's minutes shared by its
calls of 16) unless `--limit` says otherwise. The calls are the starter kit's: batches of 16 dev questions, all multiple
choice or all not (a fixed shuffle within each kind, so a call mixes task types), multiple-choice and other calls
alternating, one pass over the dev set per phase. The loaded phase starts no call after `--loaded-max` seconds, so a
machine slowed many times over still ends the measurement in minutes. One model serves every phase, as one submission
serves a whole track: the guard's measured cost carries over from the idle calls into the loaded ones, which is the case under test (load that starts mid-run).

The submission sets no thread count, so torch takes every core: this script sets `OMP_NUM_THREADS` to the core count
before torch loads (overriding an inherited value, e.g. the Makefile's 1). The stress processes spin in pure Python; they
are killed in a `finally` block, and each also stops by itself when this process is gone or after `--stress-max` seconds.

With `--ablation-calls N` (default 2), the first N calls are then run once more under the same load with torch's
threads left as configured (`Engine.fit_threads` switched off): the engine as it was before it counted the free cores.
Each is stopped after `--ablation-cap` seconds (`stopped` in its row: its wall time is then a lower bound).

Per call it records the limit (the budget), the wall time, the overrun (wall - limit), the batch size, the routed task
types, the new-token budgets the guard gave each decoded batch, the questions it cut, the torch threads each batch ran on, and
how many cores other people's processes kept busy meanwhile (`other_cores`: the machine's busy time less this process's
and the stress processes'; the "idle" phase is idle only as far as that says). It writes the measurement
(`command`, `git_commit`, `machine`, the rows and a summary per phase) atomically to `kddcup24/measured/time-guard-load.json`.
"""
import argparse, os, shlex, signal, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/"kddcup24"/"measured"/"time-guard-load.json"
SPIN = ("import os, sys, time\n"
        "end, parent = time.monotonic() + float(sys.argv[1]), os.getppid()\n"
        "while os.getppid() == parent and time.monotonic() < end: pass\n")  # stops by itself if the parent dies

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=float, default=None, help="seconds per batch_predict call (default: the submission's, call_limit(5, 16))")
    p.add_argument("--idle-passes", type=int, default=1, help="passes over the dev set on the idle machine")
    p.add_argument("--loaded-passes", type=int, default=1, help="passes over the dev set under load")
    p.add_argument("--stress", type=int, default=None, help="busy-loop processes under load (default: one per core)")
    p.add_argument("--loaded-max", type=float, default=150.0, help="start no loaded call after this many seconds of the loaded phase")
    p.add_argument("--ablation-calls", type=int, default=2, help="then, still loaded, this many calls with torch's threads as configured (the engine's fit_threads off)")
    p.add_argument("--ablation-cap", type=float, default=75.0, help="stop each of those calls after this many seconds (its wall is then a lower bound)")
    p.add_argument("--stress-max", type=float, default=900.0, help="seconds after which a stress process stops by itself")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS (default: the core count, as the submission gets)")
    p.add_argument("--data", default=None, help="development.json (default: KDDCUP24_DATA/shopbench/development.json)")
    p.add_argument("--seed", type=int, default=0, help="the shuffle of the questions within each kind")
    p.add_argument("--note", default="", help="why this limit (kept in the file)")
    p.add_argument("--out", default=str(OUT), help="the measurement file")
    return p.parse_args(argv)

def cpu_seconds(pid:int) -> float:
    "User + system CPU seconds of a live process (Linux /proc)."
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def busy_seconds() -> float:
    "CPU seconds the whole machine has been busy (all cores, /proc/stat: everything but idle and iowait)."
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")

def own_seconds(procs=()) -> float:
    "CPU seconds of this process (all its threads) and of the stress processes."
    return sum(os.times()[:2]) + sum(cpu_seconds(p.pid) for p in procs if p.poll() is None)

def uncommitted() -> list[str]:
    "The files this measurement depends on that differ from the commit (the engine, the server, this script)."
    paths = ["kddcup24/engine.py", "kddcup24/serving.py", "tools/time_guard_load.py"]
    try: out = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): return []
    return sorted(line[3:] for line in out.splitlines())

def calls(recs:list[dict], seed:int, batch:int) -> list[tuple[bool, list[dict]]]:
    "The kit's calls: `batch` questions of one kind each, multiple-choice and other calls alternating."
    import random
    from kddcup24.baseline import is_mc
    rng, kinds = random.Random(seed), []
    for mc in (True, False):
        xs = [r for r in recs if is_mc(r) == mc]; rng.shuffle(xs)
        kinds.append([(mc, xs[i:i + batch]) for i in range(0, len(xs), batch)])
    out = []
    for k in range(max(map(len, kinds))): out += [c[k] for c in kinds if k < len(c)]
    return out

class Stopped(BaseException):
    "A call stopped at its cap (a BaseException: `batch_predict` catches every Exception and would answer prompt by prompt)."

def _stop(*_): raise Stopped()

def run_calls(sub, plan:list, limit:float, phase:str, passes:int, max_s:float=float("inf"), procs=(), cap:float=0.0) -> list[dict]:
    "Run the calls `passes` times (none started after `max_s` seconds; each stopped after `cap` s if given); one row per call."
    from collections import Counter
    from kddcup24.engine import route
    rows, start = [], time.perf_counter()
    for p in range(passes):
        for mc, recs in plan:
            if time.perf_counter() - start > max_s: return rows
            qs = [r["input_field"] for r in recs]
            nb, cut, tm, th = len(sub.engine.budgets), sub.stats["shortened"], dict(sub.engine.timings), dict(sub.engine.threads)
            b0, o0, t0 = busy_seconds(), own_seconds(procs), time.perf_counter()
            stopped = False
            if cap: signal.signal(signal.SIGALRM, _stop); signal.setitimer(signal.ITIMER_REAL, cap)
            try: out = sub.batch_predict({"prompt": qs}, mc)
            except Stopped: stopped, out = True, qs
            finally:
                if cap: signal.setitimer(signal.ITIMER_REAL, 0)
            wall = time.perf_counter() - t0
            others = (busy_seconds() - b0 - (own_seconds(procs) - o0)) / wall  # cores that other people's processes kept busy
            assert len(out) == len(qs)
            rows.append(dict(phase=phase, pass_=p, multiple_choice=mc, batch_size=len(qs), budget_s=round(limit, 3), wall_s=round(wall, 3),
                             overrun_s=round(wall - limit, 3), task_types=dict(Counter(route(q, mc) for q in qs)),
                             token_budgets=[list(b) for b in sub.engine.budgets[nb:]], shortened=sub.stats["shortened"] - cut,
                             seconds_by_type={t: round(s - tm.get(t, (0, 0.0))[1], 3) for t, (n, s) in sub.engine.timings.items()
                                              if n > tm.get(t, (0, 0.0))[0]},
                             stopped=stopped, load_avg_1min=round(os.getloadavg()[0], 2), stressed=bool(procs) and all(x.poll() is None for x in procs),
                             other_cores=round(max(others, 0.0), 2),
                             threads={str(k): v - th.get(k, 0) for k, v in sorted(sub.engine.threads.items()) if v > th.get(k, 0)}))
            r = rows[-1]
            print(f"{phase:<6} pass {p} {'mc ' if mc else 'gen'} n={r['batch_size']:>2} wall {wall:6.2f} s  budget {limit:.2f} s  "
                  f"overrun {r['overrun_s']:+6.2f}{' STOPPED' if stopped else ''}  others {r['other_cores']:.2f}  threads {r['threads']}  cut {r['shortened']:>2}  {r['token_budgets']} {r['seconds_by_type']}", flush=True)
    return rows

def summary(rows:list[dict]) -> dict:
    "Calls, the budget, median and max wall, overruns: all calls and by kind."
    import statistics
    def one(rs):
        if not rs: return {"calls": 0}
        w = [r["wall_s"] for r in rs]
        return {"calls": len(rs), "budget_s": rs[0]["budget_s"], "median_wall_s": round(statistics.median(w), 3), "max_wall_s": max(w),
                "total_wall_s": round(sum(w), 2), "total_budget_s": round(sum(r["budget_s"] for r in rs), 2),
                "overruns": sum(r["overrun_s"] > 0 for r in rs), "max_overrun_s": max(r["overrun_s"] for r in rs),
                "median_wall_over_budget": round(statistics.median(x / r["budget_s"] for x, r in zip(w, rs)), 3),
                "max_wall_over_budget": round(max(x / r["budget_s"] for x, r in zip(w, rs)), 3),
                "shortened": sum(r["shortened"] for r in rs), "stopped": sum(r.get("stopped", False) for r in rs),
                "median_other_cores": round(statistics.median(r.get("other_cores", 0.0) for r in rs), 2)}
    return {"all": one(rows), "multiple_choice": one([r for r in rows if r["multiple_choice"]]),
            "other": one([r for r in rows if not r["multiple_choice"]])}

def main(argv=None):
    a = parse(argv)
    ncpu = os.cpu_count() or 1
    threads = a.threads or ncpu
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch loads
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `kill` still runs the finally blocks (the stress processes die)
    sys.path.insert(0, str(ROOT))
    import json, torch
    from kddcup24.core import atomic_write, data_dir, load_recipe
    from kddcup24.engine import call_limit, kit_batch_size
    from kddcup24.models import load_model
    from kddcup24.plan import HARDWARE, detect_hardware
    from kddcup24.run import git_commit
    from kddcup24.serving import ShopBenchModel
    from kddcup24.shopbench import load_records
    t_start = time.perf_counter()
    machine = HARDWARE[detect_hardware()].note  # its matmul benchmark runs now, before any stress
    recipe = load_recipe("track5")
    batch = kit_batch_size(recipe.inference.batch_size)
    default_limit = call_limit(5, batch)
    limit = a.limit if a.limit is not None else default_limit
    recs = load_records(a.data or data_dir()/"shopbench"/"development.json")
    model, tok = load_model("smollm2-135m")
    sub = ShopBenchModel(model, tok, recipe, time_limit=limit)
    plan = calls(recs, a.seed, sub.get_batch_size())
    print(f"{machine}; OMP_NUM_THREADS={threads}, torch threads {torch.get_num_threads()}; limit {limit:.3f} s per call; "
          f"{len(plan)} calls per pass over {len(recs)} questions", flush=True)
    idle_load = os.getloadavg()[0]
    rows = run_calls(sub, plan, limit, "idle", a.idle_passes)
    procs, stress = [], {}
    n_stress = a.stress if a.stress is not None else ncpu
    try:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", SPIN, str(a.stress_max)]) for _ in range(n_stress)]
        time.sleep(2)  # the spinners are up (the 1-minute load average lags; their CPU time says how busy they kept the cores)
        c0 = [cpu_seconds(p.pid) for p in procs]
        t1 = time.perf_counter()
        rows += run_calls(sub, plan, limit, "loaded", a.loaded_passes, a.loaded_max, procs)
        if a.ablation_calls:  # the same load, threads as configured: what the engine ran on before it counted free cores
            sub.engine.fit_threads = lambda n: None
            rows += run_calls(sub, plan[:a.ablation_calls], limit, "loaded-configured-threads", 1, procs=procs, cap=a.ablation_cap)
            del sub.engine.fit_threads
        stress = {"processes": n_stress, "kind": "python busy loop", "seconds": round(time.perf_counter() - t0, 1),
                  "cores_used": round(sum(cpu_seconds(p.pid) - c for p, c in zip(procs, c0)) / (time.perf_counter() - t1), 2)}
    finally:
        for p in procs: p.kill()
        for p in procs: p.wait()
    phases = {ph: summary([r for r in rows if r["phase"] == ph]) for ph in dict.fromkeys(r["phase"] for r in rows)}
    args = sys.argv[1:] if argv is None else argv
    body = {"command": "python tools/time_guard_load.py" + "".join(" " + shlex.quote(x) for x in args),
            "git_commit": git_commit(), "uncommitted": uncommitted(), "machine": machine,
            "model": "smollm2-135m", "recipe": recipe.name, "omp_num_threads": threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "torch_threads": torch.get_num_threads(),
            "limit_s": limit, "limit_source": "call_limit(5, 16): the submission's" if a.limit is None else f"--limit (the submission's is {default_limit:.3f})",
            "submission_limit_s": default_limit, "note": a.note,
            "questions": len(recs), "calls_per_pass": len(plan), "idle_load_avg_1min": round(idle_load, 2), "stress": stress,
            "summary": phases, "rows": rows, "seconds": round(time.perf_counter() - t_start, 1)}
    atomic_write(a.out, json.dumps(body, indent=1) + "\n")
    for ph, s in phases.items():
        x = s["all"]
        print(f"{ph:<7} calls {x['calls']:>3}  budget {x['budget_s']:.2f} s  median wall {x['median_wall_s']:.2f}  max wall {x['max_wall_s']:.2f}  "
              f"overruns {x['overruns']} (max {x['max_overrun_s']:+.2f} s)  [mc {s['multiple_choice'].get('overruns', 0)}/{s['multiple_choice']['calls']}, "
              f"other {s['other'].get('overruns', 0)}/{s['other']['calls']}]")
    print(f"stress: {stress}; wrote {a.out}")

if __name__ == "__main__":
    main()
