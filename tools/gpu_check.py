"""GPU smoke check of the pipeline's stages on a tiny random Qwen2 (no hub, no data folder).

    python tools/gpu_check.py [--device cuda|cpu] [--workdir DIR] [--json PATH] [--steps 20]

Steps: (a) QLoRA load (`train.load_base`, 4-bit NF4: CUDA + bitsandbytes only), (b) SFT steps with
`train.train_adapter` on a synthetic ShopBench-style mixture, (c) two adapters (different seeds) averaged
(`ensemble.average_adapters`, checked against the mean of their deltas) and merged (`merge_adapters`), then
wise-ft at a = 0.5 (`ensemble.wise_ft`, mergekit; `run.interpolate` if mergekit is missing), (d) AWQ
W4A16 group 128 with zero point (`quantize.quantize_awq`), (e) the AWQ folder answering ShopBench-style
questions through the engine (`kddcup24.engine.Engine` / `predict_records`), parsed and scored by `kddcup24.shopbench`.
Each step is reported as ok / FAILED / skipped in one table; the exit code is 1 if any step FAILED.
`--device cpu` runs every step that can run without a GPU (float32), so the script is tested anywhere.
`tools/gpu_check.sh` prepares the wheels and the environment for the GPU machine.
"""
from __future__ import annotations
import argparse, json, math, os, random, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="where the steps run (default cuda)")
    p.add_argument("--workdir", default=None, help="folder for the tiny model, adapters and quantized folders (default: a temp folder)")
    p.add_argument("--json", default=None, help="also write the results table as JSON here")
    p.add_argument("--steps", type=int, default=20, help="SFT steps per adapter (default 20)")
    p.add_argument("--records", type=int, default=200, help="synthetic training records (default 200)")
    return p.parse_args(argv)

ARGS = parse_args()
if ARGS.device == "cpu": os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch: llm-compressor would pick a GPU on its own
for k, v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
             "WANDB_DISABLED": "true", "TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items(): os.environ.setdefault(k, v)
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

import torch

CUDA = ARGS.device == "cuda"
DTYPE = "bfloat16" if CUDA else "float32"
RESULTS = []   # rows: step, status, seconds, vram, detail
STATE = {}     # what a step leaves for the next ones

class Skip(Exception): "A step that cannot run here (the reason is its detail)."

def mib(x): return f"{x / 2**20:.0f} MiB"

def step(name):
    "Run the decorated function as one step now; record ok / FAILED / skipped, its time and its VRAM peak."
    def run(fn):
        print(f"\n=== {name}", flush=True)
        if CUDA and torch.cuda.is_available(): torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        try: status, detail = "ok", fn() or ""
        except Skip as e: status, detail = "skipped", str(e)
        except Exception as e:
            traceback.print_exc()
            status, detail = "FAILED", f"{type(e).__name__}: {e}".replace("\n", " ")[:300]
        dt = time.time() - t0
        peak = torch.cuda.max_memory_allocated() if CUDA and torch.cuda.is_available() else None
        STATE["vram_peak"] = max(STATE.get("vram_peak", 0), peak or 0)
        RESULTS.append({"step": name, "status": status, "seconds": round(dt, 1), "vram_peak": mib(peak) if peak is not None else "-",
                        "detail": detail})
        print(f"--- {name}: {status} ({dt:.1f} s) {detail}", flush=True)
        return fn
    return run

def version(dist):
    "An installed distribution's version, or why it is missing."
    from importlib.metadata import PackageNotFoundError, version as v
    try: return v(dist)
    except PackageNotFoundError:
        if dist == "kddcup24":  # the repo on PYTHONPATH, not installed
            try: import kddcup24; return f"{kddcup24.__version__} (source)"
            except Exception as e: return f"missing ({type(e).__name__})"
        return "missing"

def header():
    import platform
    print(f"python {platform.python_version()} ({sys.executable}); device {ARGS.device}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); cuda available: {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(f"GPU: {torch.cuda.get_device_name(0)}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
    print("versions: " + ", ".join(f"{m} {version(m)}" for m in ("transformers", "peft", "accelerate", "trl", "datasets", "bitsandbytes",
                                                                    "llmcompressor", "compressed-tensors", "mergekit", "pydantic", "pyarrow", "pandas",
                                                                    "kddcup24")))
    if CUDA and not torch.cuda.is_available(): print("WARNING: --device cuda but torch sees no GPU: the CUDA steps will fail")

# ---------------------------------------------------------------- synthetic ShopBench-style data
PRODUCTS = ["mouse pad", "dog leash", "camera", "trash bin", "kettle", "desk lamp", "backpack", "wrist watch", "yoga mat",
            "coffee grinder", "phone case", "running shoes", "water bottle", "hair dryer", "office chair", "bath towel"]
BRANDS = ["Acme", "Zenith", "Nordic", "Sunpeak", "Orbit", "Kestrel", "Maple", "Vega"]
COLORS = ["black", "white", "red", "blue", "green", "grey"]
# the system prompts of the project's chat format (`kddcup24.prompts`): the task type named in the system prompt
SYSTEM = "You are a helpful online shopping assistant. "
INSTR = {"multiple-choice": "This is a multiple-choice question. Answer with the number of the correct option only.",
         "retrieval": "This is a retrieval task. Answer with the numbers of the selected items, separated by commas, and nothing else.",
         "ranking": "This is a ranking task. Answer with a permutation of the item numbers, separated by commas, and nothing else.",
         "named_entity_recognition": "This is a named entity recognition task. Answer with the requested entities copied from the input, separated by commas.",
         "generation": "This is a generation task. Answer briefly and directly, following the instructions."}

def question(rng, tt):
    "One ShopBench-style record (input_field, output_field, task_type, metric) of task type `tt`."
    if tt == "multiple-choice":
        opts = rng.sample(PRODUCTS, 4); a = rng.randrange(4)
        q = f"Which of the following products is best described as a {opts[a]}?\n" + "".join(f"{i}. {o}\n" for i, o in enumerate(opts)) + "Answer: "
        return dict(input_field=q, output_field=a, task_type=tt, metric="accuracy", is_multiple_choice=True)
    if tt == "retrieval":
        items = rng.sample(PRODUCTS, 6); pos = sorted(rng.sample(range(1, 7), 3))
        q = (f"A customer bought a {rng.choice(PRODUCTS)}. Select the 3 products the customer is most likely to buy next.\n"
             + "".join(f"{i}. {p}\n" for i, p in enumerate(items, 1)) + "Answer with the numbers separated by commas.")
        return dict(input_field=q, output_field=pos, task_type=tt, metric="hit rate@3", is_multiple_choice=False)
    if tt == "ranking":
        items = rng.sample(PRODUCTS, 5); w = [round(rng.random(), 2) for _ in items]
        q = (f"Rank the following products by relevance to the query '{rng.choice(COLORS)} {items[0]}'. You should output a permutation "
             "of 1 to 5. There should be a comma separating two numbers.\n" + "".join(f"{i}. {p}\n" for i, p in enumerate(items, 1)))
        return dict(input_field=q, output_field=w, task_type=tt, metric="ndcg", is_multiple_choice=False)
    if tt == "named_entity_recognition":
        b, c, p = rng.choice(BRANDS), rng.choice(COLORS), rng.choice(PRODUCTS)
        q = f"Please extract phrases from the query that correspond to the entity type 'brand'.\nQuery: {b} {c} {p}"
        return dict(input_field=q, output_field=[b], task_type=tt, metric="micro f1", is_multiple_choice=False)
    p = rng.choice(PRODUCTS)
    q = f"Write a one-sentence product description for a {rng.choice(COLORS)} {p}."
    return dict(input_field=q, output_field=f"A {p} that is durable, practical and easy to use.", task_type="generation",
                metric="rougel", is_multiple_choice=False)

def answer_text(r):
    "The truth written as the answer the official parser reads back (as `prompts.format_answer` writes it)."
    tt, y = r["task_type"], r["output_field"]
    if tt == "multiple-choice": return str(y)
    if tt == "retrieval": return ", ".join(map(str, y))
    if tt == "ranking": return ", ".join(str(i + 1) for i in sorted(range(len(y)), key=lambda i: -y[i]))
    if tt == "named_entity_recognition": return ", ".join(y)
    return y

def mixture(n, seed=0):
    "`n` training records in the project's TRL conversational form (`prompt`/`completion` chat messages)."
    rng = random.Random(seed)
    types = ["multiple-choice", "multiple-choice", "retrieval", "ranking", "named_entity_recognition", "generation"]
    out = []
    for i in range(n):
        r = question(rng, types[i % len(types)])
        r.update(source="gpu-check/synthetic", task_name=f"synthetic-{r['task_type']}", tracks=[],
                 prompt=[{"role": "system", "content": SYSTEM + INSTR[r["task_type"]]}, {"role": "user", "content": r["input_field"]}],
                 completion=[{"role": "assistant", "content": answer_text(r)}])
        out.append(r)
    return out

def write_jsonl(path, recs):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return Path(path)

# ---------------------------------------------------------------- helpers
def recipe(seed=1):
    "The single-GPU paper recipe on the tiny model: QLoRA in bf16 on CUDA, plain LoRA in float32 on CPU."
    from kddcup24.core import load_recipe
    return load_recipe("track5-gpu-7b", [
        f"model.base={STATE['tiny']}", f"model.dtype={DTYPE}", f"lora.load_in_4bit={'true' if CUDA else 'false'}",
        "lora.r=8", "lora.alpha=16", "train.lr=5e-3", "train.batch_size=8", "train.grad_accum=1", "train.max_length=384",
        f"train.max_steps={ARGS.steps}", "train.save_steps=1000", "train.warmup_ratio=0.0", "train.max_minutes=0",
        f"train.seed={seed}", "inference.batch_size=8"])

def device_model(path, dtype=None):
    "`models.load_model` on the check's device."
    from kddcup24.models import load_model
    return load_model(str(path), dtype=dtype or DTYPE, device_map="cuda" if CUDA else None)

def lora_losses(tr):
    return [h["loss"] for h in tr.state.log_history if "loss" in h]

def train(seed, out):
    "An adapter trained `ARGS.steps` steps (QLoRA on CUDA) into `out`; returns (losses, trainer, seconds)."
    from kddcup24.train import load_base, train_adapter
    r = recipe(seed)
    if CUDA and not STATE.get("qlora_ok"):  # (a) failed: train LoRA on the full-precision base so the rest still runs
        model, tok = device_model(STATE["tiny"])
    else: model, tok = load_base(r)
    t0 = time.time()
    pm, tok, tr, res = train_adapter(r, STATE["train"], Path(out).parent/f"ckpt-{seed}", out, model=model, tok=tok, save_strategy="no")
    dt = time.time() - t0
    del pm, model
    if CUDA: torch.cuda.empty_cache()
    return lora_losses(tr), tr, dt

def check_losses(ls, steps):
    if len(ls) < steps // 2: raise AssertionError(f"only {len(ls)} losses logged for {steps} steps")
    if not all(math.isfinite(x) for x in ls): raise AssertionError(f"non-finite loss: {ls}")
    k = max(1, min(3, len(ls) // 4))
    first, last = sum(ls[:k]) / k, sum(ls[-k:]) / k
    if not last < first: raise AssertionError(f"loss did not drop: first {ls[:k]} last {ls[-k:]}")
    return first, last

# ---------------------------------------------------------------- the steps
def main():
    import tempfile
    header()
    work = Path(ARGS.workdir or tempfile.mkdtemp(prefix="kddcup24-gpu-check-")); work.mkdir(parents=True, exist_ok=True)
    print(f"workdir {work}")
    if CUDA and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False  # exact float32 for the 1e-5 checks
    T0 = time.time()

    @step("setup: tiny Qwen2 + data")
    def _():
        from kddcup24.models import tiny_qwen2
        from kddcup24.shopbench import load_records
        STATE["tiny"] = tiny_qwen2(work/"tiny", hidden=128)
        # the records go through the project's reader, which validates the ShopBench schema
        STATE["train"] = load_records(write_jsonl(work/"mix"/"train.jsonl", mixture(ARGS.records, seed=0)))
        rng = random.Random(7)
        qs = [question(rng, t) for t in ["multiple-choice", "retrieval", "ranking", "named_entity_recognition"] for _ in range(2)]
        STATE["eval"] = load_records(write_jsonl(work/"eval.jsonl", qs))
        from collections import Counter
        return f"hidden 128, {len(STATE['train'])} train records {dict(Counter(r['task_type'] for r in STATE['train']))}, {len(qs)} eval questions"

    @step("a. QLoRA load (load_base, 4-bit)")
    def _():
        if not CUDA: raise Skip("QLoRA needs CUDA and bitsandbytes (lora.load_in_4bit on a CPU raises in load_base)")
        import bitsandbytes as bnb
        from kddcup24.train import load_base
        model, tok = load_base(recipe())
        lin = model.model.layers[0].self_attn.q_proj
        if not isinstance(lin, bnb.nn.Linear4bit): raise AssertionError(f"q_proj is {type(lin).__name__}, not bitsandbytes Linear4bit")
        n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
        dev, qt = lin.weight.device, getattr(lin.weight, "quant_type", "?")
        if dev.type != "cuda": raise AssertionError(f"Linear4bit weight on {dev}")
        STATE["qlora_ok"] = True
        del model; torch.cuda.empty_cache()
        return f"{n4} Linear4bit ({qt}, bnb {bnb.__version__}) on {dev}, compute dtype {getattr(lin, 'compute_dtype', '?')}"

    @step(f"b. SFT {ARGS.steps} steps (train_adapter)")
    def _():
        from kddcup24.train import sft_config
        cfg = sft_config(recipe(), work/"cfg-probe", max_steps=ARGS.steps)
        if CUDA and not (cfg.bf16 and not cfg.use_cpu): raise AssertionError(f"sft_config on CUDA: bf16={cfg.bf16} use_cpu={cfg.use_cpu}")
        ls, tr, dt = train(1, work/"adapter-1")
        first, last = check_losses(ls, ARGS.steps)
        STATE["adapters"] = [work/"adapter-1"]
        dev = next(tr.model.parameters()).device
        base = "QLoRA base" if STATE.get("qlora_ok") else ("full-precision base ((a) failed)" if CUDA else "float32 base")
        return (f"{tr.state.global_step} steps on {dev}, {base}, loss {first:.3f} -> {last:.3f}, "
                f"{tr.state.num_input_tokens_seen / dt:.0f} tok/s, bf16={cfg.bf16}")

    @step("c1. adapter averaging (average_adapters)")
    def _():
        if not STATE.get("adapters"): raise Skip("needs the adapter of step b")
        from kddcup24.ensemble import average_adapters
        ls, _, _ = train(2, work/"adapter-2")
        check_losses(ls, ARGS.steps)
        ads = [work/"adapter-1", work/"adapter-2"]
        k = "model.layers.0.self_attn.q_proj.weight"
        def merged_sd(adapters):
            b, _ = device_model(STATE["tiny"], "float32")
            w0 = b.state_dict()[k].detach().clone()
            return average_adapters(b, adapters).merge_and_unload().state_dict()[k].detach() - w0
        d1, d2, davg = merged_sd(ads[:1]), merged_sd(ads[1:]), merged_sd(ads)
        if d1.abs().max() < 1e-6 or d2.abs().max() < 1e-6: raise AssertionError("an adapter's delta is zero: the check would be vacuous")
        if torch.equal(d1, d2): raise AssertionError("the two seeds gave identical adapters")
        err = float((davg - (d1 + d2) / 2).abs().max())
        if err > 1e-5: raise AssertionError(f"averaged delta differs from the mean of the deltas by {err:.2e} (> 1e-5)")
        STATE["adapters"] = ads
        return f"{k} on {davg.device}: |mean delta| max {float(((d1 + d2) / 2).abs().max()):.2e}, max abs diff {err:.1e} (<= 1e-5)"

    @step("c2. merge + wise-ft a=0.5 (merge_adapters, wise_ft)")
    def _():
        if len(STATE.get("adapters", [])) < 2: raise Skip("needs the two adapters of step c1")
        from kddcup24 import ensemble as ens, run as kr
        from kddcup24.models import load_model
        ft = ens.merge_adapters(str(STATE["tiny"]), STATE["adapters"], work/"merged", dtype="float32")
        STATE["merged"] = ft
        out, how = work/"wise", "wise_ft (mergekit)"
        try:
            import mergekit  # noqa: F401
            ens.wise_ft(str(STATE["tiny"]), ft, 0.5, out, dtype="float32")
        except ImportError as e:
            b, tok = load_model(str(STATE["tiny"])); f, _ = load_model(str(ft))
            m = kr.interpolate(b, f, 0.5)
            m.save_pretrained(out); tok.save_pretrained(out)
            how = f"run.interpolate (mergekit missing: {e})"
        wb, wf, ww = (load_model(str(p))[0].state_dict() for p in (STATE["tiny"], ft, out))
        err = max(float((ww[k] - (wb[k] + wf[k]) / 2).abs().max()) for k in ww)
        k = "model.layers.0.mlp.down_proj.weight"
        moved = float((wf[k] - wb[k]).abs().max())
        if moved < 1e-6: raise AssertionError("the merged model equals the base: nothing to check")
        if err > 1e-5: raise AssertionError(f"wise-ft weights differ from (W_base + W_ft)/2 by {err:.2e}")
        STATE["wise"] = out
        return f"{how}: every tensor = (W_base + W_ft)/2, max abs diff {err:.1e}; |W_ft - W_base| max {moved:.2e}"

    @step("d. AWQ W4A16 g128 zero point (quantize_awq)")
    def _():
        from kddcup24.quantize import awq_recipe, quantize_awq
        from kddcup24.models import load_tokenizer
        src = STATE.get("wise") or STATE.get("merged") or STATE["tiny"]
        tok = load_tokenizer(str(src))
        texts = [tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in STATE["train"][:32]]
        mods = awq_recipe(4, 128, True, ["lm_head"])
        try:
            from llmcompressor.utils.dev import get_main_device
            main_dev = str(get_main_device())
        except Exception: main_dev = "?"
        if CUDA and not main_dev.startswith("cuda"): raise AssertionError(f"llm-compressor would calibrate on {main_dev}, not CUDA")
        q = quantize_awq(src, work/"awq", texts, bits=4, group_size=128, zero_point=True, ignore=["lm_head"], max_seq_length=256)
        cfg = json.loads((Path(q)/"config.json").read_text())["quantization_config"]
        w = cfg["config_groups"]["group_0"]["weights"]
        got = (cfg["quant_method"], w["num_bits"], w["group_size"], w["symmetric"], w["strategy"])
        if got != ("compressed-tensors", 4, 128, False, "group"): raise AssertionError(f"quantization_config {got}")
        from safetensors import safe_open
        keys = [k for f in Path(q).glob("*.safetensors") for k in safe_open(str(f), "pt").keys()]
        if not any(k.endswith("weight_zero_point") for k in keys): raise AssertionError("no weight_zero_point tensors in the AWQ folder")
        STATE["awq"] = q
        src_name = "wise-ft model" if src == STATE.get("wise") else ("merged model" if src == STATE.get("merged") else "tiny base (earlier steps failed)")
        return (f"{src_name} -> {cfg.get('format', '?')}, {[type(m).__name__ for m in mods]}, calibrated on {main_dev}, "
                f"{sum(k.endswith('weight_packed') for k in keys)} packed Linear")

    @step("e. engine on the AWQ folder (Engine, predict_records)")
    def _():
        if not STATE.get("awq"): raise Skip("needs the AWQ folder of step d")
        from kddcup24.engine import Engine, predict_records
        from kddcup24.shopbench import evaluate_records, parse_response
        model, tok = device_model(STATE["awq"])
        recs = STATE["eval"]
        r = recipe()
        eng = Engine(model, tok, r)
        res = predict_records(recs, model, tok, r, engine=eng)
        if len(res) != len(recs) or not all(isinstance(s, str) for s in res): raise AssertionError(f"responses: {res!r}")
        bad = []
        for x, s in zip(recs, res):
            p, tt = parse_response(s, x["task_type"]), x["task_type"]
            ok = {"multiple-choice": lambda: p in range(4), "retrieval": lambda: bool(p) and all(1 <= i <= 6 for i in p),
                  "ranking": lambda: sorted(p) == [1, 2, 3, 4, 5], "named_entity_recognition": lambda: isinstance(p, list)}[tt]()
            if not ok: bad.append((tt, s, p))
        if bad: raise AssertionError(f"unparseable answers: {bad}")
        rep, _ = evaluate_records([{**x, "response": s} for x, s in zip(recs, res)])
        types = {t: round(v["score"], 2) for t, v in rep["task_types"].items()}
        lin = type(model.model.layers[0].self_attn.q_proj).__name__
        return f"{len(res)} answers on {model.device} ({lin}), all parseable, e.g. {res[:3]}, scores {types}"

    if CUDA and torch.cuda.is_available():
        print(f"\nGPU {torch.cuda.get_device_name(0)}; peak VRAM of the run {mib(STATE['vram_peak'])} allocated")
    total = time.time() - T0
    w = max(len(r["step"]) for r in RESULTS)
    print(f"\n{'step':<{w}}  {'status':<7}  {'sec':>6}  {'VRAM':>8}  detail")
    for r in RESULTS: print(f"{r['step']:<{w}}  {r['status']:<7}  {r['seconds']:>6.1f}  {r['vram_peak']:>8}  {r['detail']}")
    failed = [r["step"] for r in RESULTS if r["status"] == "FAILED"]
    n = {k: sum(r["status"] == k for r in RESULTS) for k in ("ok", "skipped", "FAILED")}
    print(f"\n{n['ok']} ok, {n['skipped']} skipped, {n['FAILED']} FAILED in {total:.0f} s" + (f": {failed}" if failed else ""))
    if ARGS.json:
        Path(ARGS.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ARGS.json).write_text(json.dumps({"device": ARGS.device, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                                               "torch": torch.__version__, "seconds": round(total, 1),
                                               "vram_peak_mib": round(STATE.get("vram_peak", 0) / 2**20), "steps": RESULTS}, indent=1))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
