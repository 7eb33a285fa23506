"""Peak memory of `kddcup24 evaluate` per MB of predictions file: `kddcup24/measured/evaluate-memory.json`.

Builds predictions files of a few sizes in a temporary folder by repeating the dev questions with a
`response` each (the truth as text, plus the copy's number, so no two copies share a response and
nothing is cached across copies), runs `kddcup24 evaluate FILE` on each as a process of its own, reads
its peak resident memory (`wait4`'s `ru_maxrss`), fits peak MiB = base + slope x file MiB by least
squares and writes the figures, the command and the commit atomically. `kddcup24.shopbench.input_bound`
reads the slope: the largest input this machine's free memory allows.

    KDDCUP24_DATA=../shared/data python tools/evaluate_memory.py [--sizes 10 20 40 80] [--out PATH]

The dev mix (57 tasks, ~0.9 KB a question) is what is measured; the evaluator's memory per question does
not grow with a task's size (the bootstrap draws its resamples in chunks). About 3 minutes on 2 cores.
"""
from __future__ import annotations
import argparse, json, os, shlex, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def predictions(dev:list[dict], mib:float, out:Path) -> tuple[int, int]:
    "Write copies of `dev` with responses to `out` until it holds `mib` MiB; (records, bytes)."
    n = size = 0
    with open(out, "w", encoding="utf-8") as f:
        k = 0
        while size < mib * 2**20:
            for r in dev:
                line = json.dumps({**r, "response": f"{r['output_field']} (copy {k})"}, ensure_ascii=False) + "\n"
                f.write(line); size += len(line.encode("utf-8")); n += 1
            k += 1
    return n, size

def peak_rss(cmd:list[str], env:dict) -> tuple[float, float]:
    "Run `cmd`; its peak resident memory in MiB and its seconds (a failure raises, with its stderr)."
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode, dt = os.waitstatus_to_exitcode(status), time.perf_counter() - t0
        if p.returncode:
            err.seek(0); raise SystemExit(f"{shlex.join(cmd)}: exit {p.returncode}\n{err.read().decode(errors='replace')[-2000:]}")
    return ru.ru_maxrss / 1024, dt  # Linux reports KiB

def fit(xs:list[float], ys:list[float]) -> tuple[float, float]:
    "Least-squares slope and intercept of ys on xs."
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[10, 20, 40, 80], help="predictions file sizes, MiB")
    ap.add_argument("--out", default=str(ROOT/"kddcup24"/"measured"/"evaluate-memory.json"), help="the measurement file to write")
    ap.add_argument("--data-dir", help="data folder (default: KDDCUP24_DATA)")
    a = ap.parse_args(argv)
    if len(a.sizes) < 2: ap.error("--sizes: at least two sizes to fit a slope")
    from kddcup24.core import atomic_write, data_dir
    from kddcup24.shopbench import load_records, mem_available
    free = mem_available()
    if max(a.sizes) * 2**20 * 20 > free * 0.5: ap.error(f"--sizes: {max(a.sizes):.0f} MiB could need {max(a.sizes) * 20 / 1024:.1f} GiB; {free / 2**30:.1f} GiB is free")
    dev = load_records(data_dir(a.data_dir)/"shopbench"/"development.json")
    exe = Path(sys.executable).parent/"kddcup24"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "KDDCUP24_MAX_INPUT_MB": str(int(max(a.sizes)) + 1)}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for mib in sorted(a.sizes):
            f = Path(d)/f"predictions-{mib:g}mib.jsonl"
            n, size = predictions(dev, mib, f)
            peak, dt = peak_rss([str(exe), "evaluate", str(f)], env)
            rows.append({"input_mib": round(size / 2**20, 2), "records": n, "peak_rss_mib": round(peak, 1), "seconds": round(dt, 1)})
            print(json.dumps(rows[-1]), flush=True)
            f.unlink()
    slope, base = fit([r["input_mib"] for r in rows], [r["peak_rss_mib"] for r in rows])
    from kddcup24.plan import HARDWARE, detect_hardware
    from kddcup24.run import git_commit
    body = {"command": shlex.join(["python", "tools/evaluate_memory.py", *(sys.argv[1:] if argv is None else argv)]), "machine": HARDWARE[detect_hardware()].note,
            "git_commit": git_commit(), "host_mem_available_gib": round(free / 2**30, 1),
            "input": "copies of the dev questions (shopbench/development.json), each with a response (its truth as text and the copy's number)",
            "slope_mb_per_mb": round(slope, 2), "base_mb": round(base, 1),
            "note": "peak resident MiB of `kddcup24 evaluate FILE` = base_mb + slope_mb_per_mb x the file's MiB (least squares over rows)",
            "rows": rows}
    atomic_write(a.out, json.dumps(body, indent=1) + "\n")
    print(f"peak ≈ {base:.0f} MiB + {slope:.2f} x the file -> {a.out}")

if __name__ == "__main__": main()
