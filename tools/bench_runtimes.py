"""Other CPU runtimes beside PyTorch on the scoring path: OpenVINO (optimum-intel) and ONNX Runtime (optimum-onnx),
timed on the model the engine scores with and checked against PyTorch float32's answers. Written to a measured file
(kddcup24/measured/runtimes-tried.json, read by notebook 07), one row per runtime and precision.

Multiple choice is what the CPU default scores by forward passes alone (option-text PMI), so that is the workload:
the dev set's multiple-choice questions as the engine poses them (`engine.option_requests`), each option scored by
one full forward pass over prompt and option text (no KV cache: the exported models take none), and a prefill of
8 x 256 random tokens. Each runtime runs in its own process, in the environment that has it; the PyTorch run comes
first and writes the requests the others score:

    .venv/bin/python tools/bench_runtimes.py --runtime torch --out F              # PyTorch, and the requests
    OVENV/bin/python tools/bench_runtimes.py --runtime openvino --out F           # optimum-intel's environment
    ORTENV/bin/python tools/bench_runtimes.py --runtime onnxruntime --out F       # optimum-onnx's

(OVENV: `pip install torch==2.13.0 "optimum-intel[openvino]"`; ORTENV: `pip install torch==2.13.0 optimum-onnx
onnxruntime`. Two venvs, neither the project's .venv: each pins a transformers and an optimum of its own, and
optimum-onnx installed beside optimum-intel downgrades the optimum that optimum-intel needs.)
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREADS = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def requests_file(out: Path) -> Path:
    "Where the PyTorch run leaves the option requests the other runtimes score."
    return out.with_suffix(".requests.json")


def build_requests(model_name: str, data: str, limit: int = 0) -> dict:
    "The engine's option requests for the dev set's multiple-choice questions, and the engine's own picks and time."
    import torch

    from kddcup24.core import as_recipe
    from kddcup24.engine import Engine, option_requests
    from kddcup24.models import load_model, resolve_model
    from kddcup24.plan import linear_params, matmul_rate
    from kddcup24.shopbench import load_records

    r = as_recipe("track5", 5, [f"model.base={model_name}", "inference.bf16_body=false"])
    model, tok = load_model(r.model.base, dtype="float32")
    recs = [x for x in load_records(data) if x.get("is_multiple_choice") or x.get("task_type") == "multiple-choice"]
    recs = recs[: limit or None]
    eng = Engine(model, tok, r)
    pols = [p for p in eng.policies([x["input_field"] for x in recs], ["multiple-choice"] * len(recs)) if p.options]
    reqs = [option_requests(tok, p) for p in pols]
    eng._pick_options(pols)  # warm-up
    t0 = time.perf_counter()
    with torch.inference_mode():
        picks = eng._pick_options(pols)
    P = linear_params(model)  # a token costs 2 FLOPs per matmul weight, the output head's included
    return {
        # this CPU's compute limit for the model, per precision: the matmul rate the planner measures (notebook 01f)
        "limit_tokens_per_s": {d: round(matmul_rate(d) / (2 * P), 1) for d in ("float32", "bfloat16")},
        "model_dir": str(resolve_model(model_name)),
        "pad": tok.pad_token_id,
        "requests": [{"cond": c, "free": f, "keys": k, "conts": cs} for c, f, k, cs in reqs],
        "engine_picks": picks,
        "engine_seconds": time.perf_counter() - t0,
    }


def rows_of(prompt: list[int], conts: list[list[int]], pad: int):
    "One right-padded row per option (prompt then option text), its mask, and where each option's tokens start."
    L = len(prompt) + max(len(c) for c in conts)
    ids = [prompt + c + [pad] * (L - len(prompt) - len(c)) for c in conts]
    mask = [[1] * (len(prompt) + len(c)) + [0] * (L - len(prompt) - len(c)) for c in conts]
    return ids, mask


def option_logprobs(logits, prompt: list[int], conts: list[list[int]]) -> list[float]:
    "Summed log-probability of each option's tokens, from the full-sequence logits (numpy, rows x L x vocab)."
    import numpy as np

    out = []
    for r, c in enumerate(conts):
        x = logits[r, len(prompt) - 1 : len(prompt) - 1 + len(c)].astype(np.float64)
        m = x.max(-1, keepdims=True)
        lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[:, 0]
        out.append(float((x[np.arange(len(c)), c] - lse).sum()))
    return out


def pick(keys, cond, free):
    "The engine's PMI pick (`engine.pmi_pick`: the first on ties), restated so the other environments need no import."
    gain = [a - b for a, b in zip(cond, free)]
    return keys[max(range(len(keys)), key=lambda i: gain[i])]


def score_all(forward, req: dict) -> tuple[list[str], float, int]:
    "PMI picks of every request through `forward(ids, mask) -> logits`, the seconds it took and the tokens it read."
    pad, picks, tokens = req["pad"], [], 0
    t0 = time.perf_counter()
    for q in req["requests"]:
        lps = []
        for prompt in (q["cond"], q["free"]):
            ids, mask = rows_of(prompt, q["conts"], pad)
            tokens += sum(map(sum, mask))
            lps.append(option_logprobs(forward(ids, mask), prompt, q["conts"]))
        picks.append(pick(q["keys"], *lps))
    return picks, time.perf_counter() - t0, tokens


def timed(fn, reps: int = 2) -> float:
    "Seconds per call of `fn`, after one warm-up call (`serving._timed`, restated: the runtimes' own environments)."
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def torch_forward(model):
    "`forward(ids, mask) -> numpy logits` of a transformers model."
    import torch

    def f(ids, mask):
        with torch.inference_mode():
            lg = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
        return lg.float().numpy()

    return f


def exported_forward(model):
    "`forward(ids, mask) -> numpy logits` of an optimum-exported model (OpenVINO or ONNX Runtime)."
    import numpy as np
    import torch

    def f(ids, mask):
        ids, mask = torch.tensor(ids), torch.tensor(mask)
        lg = model(input_ids=ids, attention_mask=mask).logits  # right padding: positions count from 0 as they are
        return lg.float().numpy() if hasattr(lg, "float") else np.asarray(lg, dtype=np.float32)

    return f


def readable_model(model_dir: str, tmp: Path) -> tuple[str, str]:
    """The model folder as this venv's transformers reads it, and what was changed to make it so ("" if nothing).
    The embedded model's config.json is written by transformers 5, whose `rope_parameters` transformers 4 (the
    optimum-onnx venv's 4.57) does not read: it falls back to rope_theta 10000 without a word, where SmolLM2's is
    100000, and exports a different model (14 of 44 answers moved, ONNX Runtime agreeing with that venv's PyTorch
    on all 44). A copy of the folder gets the value at the config's top level, where transformers 4 reads it."""
    import transformers

    cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    rp = cfg.get("rope_parameters")
    if int(transformers.__version__.split(".")[0]) >= 5 or not rp:
        return model_dir, ""
    if rp.get("rope_type", "default") != "default":
        raise SystemExit(f"{model_dir}/config.json: rope_type {rp['rope_type']!r} has no transformers-4 form here")
    d = tmp / "model"
    d.mkdir()
    for f in Path(model_dir).iterdir():
        if f.name != "config.json":
            (d / f.name).symlink_to(f.resolve())
    (d / "config.json").write_text(json.dumps({**cfg, "rope_theta": rp["rope_theta"]}, indent=2), encoding="utf-8")
    note = (
        f"rope_theta {rp['rope_theta']:g} copied to the config's top level for transformers {transformers.__version__}"
    )
    return str(d), note


def variants(runtime: str, model_dir: str, tmp: Path):
    "`(precision, forward, export seconds, what was changed in the model's config)` for each precision tried."
    if runtime == "torch":
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(THREADS)
        m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        yield "float32", torch_forward(m), 0.0, ""
        yield "bfloat16", torch_forward(m.to(torch.bfloat16)), 0.0, ""
    elif runtime == "openvino":
        from optimum.intel import OVModelForCausalLM

        model_dir, cfg_note = readable_model(model_dir, tmp)
        t0 = time.perf_counter()
        d = tmp / "ov"
        OVModelForCausalLM.from_pretrained(model_dir, export=True, use_cache=False, compile=False).save_pretrained(d)
        secs = time.perf_counter() - t0
        for prec in ("f32", "bf16"):
            cfg = {"INFERENCE_PRECISION_HINT": prec, "INFERENCE_NUM_THREADS": str(THREADS)}
            m = OVModelForCausalLM.from_pretrained(d, use_cache=False, ov_config=cfg)
            yield {"f32": "float32", "bf16": "bfloat16"}[prec], exported_forward(m), secs, cfg_note
    elif runtime == "onnxruntime":
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForCausalLM

        model_dir, cfg_note = readable_model(model_dir, tmp)
        t0 = time.perf_counter()
        d = tmp / "onnx"
        ORTModelForCausalLM.from_pretrained(model_dir, export=True, use_cache=False).save_pretrained(d)
        secs = time.perf_counter() - t0
        so = ort.SessionOptions()
        so.intra_op_num_threads = THREADS
        m = ORTModelForCausalLM.from_pretrained(d, use_cache=False, session_options=so)
        yield "float32", exported_forward(m), secs, cfg_note
    else:
        raise SystemExit(f"--runtime {runtime}: must be torch, openvino or onnxruntime")


def version(runtime: str) -> str:
    "The runtime's package and version (`torch 2.13.0+cpu`)."
    from importlib.metadata import version as v

    return f"{runtime} {v(runtime)}"


def machine() -> str:
    "The CPU's model name, its bf16 instructions, its cores and the threads each runtime was given."
    info = Path("/proc/cpuinfo").read_text().splitlines()
    names = [ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")]
    flags = next((ln.split(":", 1)[1].split() for ln in info if ln.startswith("flags")), [])
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags] or ["no bf16 instructions"]
    return f"{names[0] if names else platform.machine()} ({', '.join(bf16)}), {os.cpu_count()} cores, {THREADS} threads"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runtime", required=True, choices=["torch", "openvino", "onnxruntime"])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", default=str(Path(os.environ.get("KDDCUP24_DATA", "")) / "shopbench/development.json"))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--limit", type=int, default=0, help="score only the first N questions (a smoke test)")
    a = p.parse_args(argv)
    rf = requests_file(a.out)
    if a.runtime == "torch":
        req = build_requests(a.model, a.data, a.limit)
        rf.write_text(json.dumps(req))
    elif not rf.exists():
        raise SystemExit(f"{rf}: no requests; run --runtime torch first")
    req = json.loads(rf.read_text())
    req["requests"] = req["requests"][: a.limit or None]
    body = json.loads(a.out.read_text()) if a.out.exists() else {"rows": []}
    body["rows"] = [r for r in body["rows"] if r["runtime"] != a.runtime]
    base = next((r for r in body["rows"] if r["runtime"] == "torch" and r["precision"] == "float32"), None)
    import numpy as np

    ids = np.random.default_rng(0).integers(0, 49152, (8, 256)).tolist()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    with tempfile.TemporaryDirectory() as tmp:
        for prec, fwd, export_s, cfg_note in variants(a.runtime, req["model_dir"], Path(tmp)):
            pre = timed(lambda f=fwd: f(ids, [[1] * 256] * 8))
            score_all(fwd, {**req, "requests": req["requests"][:2]})  # warm-up
            picks, secs, tokens = score_all(fwd, req)
            row = {
                "runtime": a.runtime,
                "version": version(a.runtime),
                "precision": prec,
                "prefill_tokens_per_s": round(8 * 256 / pre, 1),
                "option_scoring_tokens_per_s": round(tokens / secs, 1),
                "option_scoring_seconds": round(secs, 2),
                "limit_tokens_per_s": req["limit_tokens_per_s"][prec],
                "option_scoring_share_of_limit": round(tokens / secs / req["limit_tokens_per_s"][prec], 3),
                "questions": len(picks),
                "picks": picks,
                "export_seconds": round(export_s, 1),
                **({"model_config": cfg_note} if cfg_note else {}),
                "git_commit": commit,
            }
            if a.runtime == "torch" and prec == "float32":
                base = row
                row["engine_prefix_cached_seconds"] = round(req["engine_seconds"], 2)
                row["agree_with_engine"] = sum(x == y for x, y in zip(picks, req["engine_picks"])) / len(picks)
            if base:
                row["agree_with_torch_float32"] = sum(x == y for x, y in zip(picks, base["picks"])) / len(picks)
                row["speed_vs_torch_float32"] = {
                    "prefill": round(row["prefill_tokens_per_s"] / base["prefill_tokens_per_s"], 2),
                    "option_scoring": round(base["option_scoring_seconds"] / secs, 2),
                }
            print(json.dumps({k: v for k, v in row.items() if k != "picks"}), flush=True)
            body["rows"].append(row)
    body.update(
        command=f"python tools/bench_runtimes.py --runtime <each row's runtime> --out {a.out.name} (torch in .venv, "
        "openvino and onnxruntime each in its own venv), one after the other on an idle machine",
        git_commit=commit,
        machine=machine(),
        workload=f"{len(req['requests'])} dev multiple-choice questions as the engine poses them (option-text PMI, "
        "one full forward pass per option, no KV cache); prefill: 8 x 256 random tokens, every position's logits",
    )
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, a.out)


if __name__ == "__main__":
    sys.exit(main())
