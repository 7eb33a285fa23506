"""GPU check of the pipeline's own stage functions on a random Qwen2 built on the device, measured beside the plan.

    python tools/gpu_check.py [--device cuda|cpu] [--scale 7b|small|tiny] [--workdir DIR] [--json PATH] [--commit SHA]
                              [--steps N] [--save-at K] [--tp 4] [--budget S] [--set SECTION.KEY=VALUE ...]

The model: Qwen2-7B-Instruct's config (`kddcup24/model_configs/Qwen2-7B-Instruct.json`) with random weights, built on the
device and saved as safetensors shards of 4 GB (as the hub's). `--scale 7b` keeps it whole (7.6B parameters, 15.2 GB in
bf16); `small` keeps its widths but 2 layers and the MLP width of Qwen2-72B (29568, which tensor parallel 4 pads: 18944 is
37 x 512 and needs none); `tiny` (the CPU's) is hidden 128, 2 layers, MLP 320, a 400-token vocabulary, float32. The
tokenizer is `kddcup24.models.tiny_qwen2`'s (400 tokens) at every scale: token ids, not words, are what costs.
The recipe: `track5-gpu-7b` with `model.base=<the random model>` and the check's sizes (`recipe_overrides`).

Steps, each the pipeline's own function, each ok / FAILED / skipped, with its seconds and peak GPU memory
(`torch.cuda.max_memory_allocated`, reset per step):
  setup  the random model on the device, saved; synthetic ShopBench-style records; `kddcup24.plan.plan(recipe, "1xH200")`
  a      QLoRA load: `train.load_base` (4-bit NF4, placed by `gpu.rank_device_map`; CUDA + bitsandbytes only)
  b1     `train.train_adapter` for K steps of N (`StopAt(K)`): checkpoint-K saved, as a killed run leaves it
  b2     `train.train_adapter(resume=True)` on a freshly loaded base: global_step continues K+1..N, the final adapter differs
         from the checkpoint's
  c1     the ensemble stage's merge: `ensemble.merge_adapters` (= `average_lora` of checkpoint-K and the final adapter, then
         `merge_lora` into the base's shards), checked against the mean of the two adapters' deltas and W_base + mean delta
  c2     wise-ft at a = 0.5: `ensemble.wise_ft` (mergekit), checked against (W_base + W_ft)/2
  d      AWQ W4A16 g128 with zero point: `quantize.quantize_awq(..., tensor_parallel=--tp)` on the wise-ft model, with the
         MLP padded to a multiple of group_size x tp (`quantize.pad_mlp`, `gpu.padded_intermediate`); config.json's
         `intermediate_size`(`_unpadded`), the packed shapes, zero points and finite scales are checked
  e      the AWQ folder loaded back by transformers (compressed-tensors): finite logits (what vLLM would load)
Then two tables (steps; measured against the plan) and the JSON (`--json`): the measurement format of
`kddcup24/measured/` (`command`, `git_commit`, `machine`), written after every step so a killed run leaves its rows.
`--device cpu` runs every step that can run without CUDA on the tiny scale (QLoRA skipped), for tests anywhere.
`--budget S`: the seconds the run may take; AWQ moves to the small scale when the 7B's wise-ft model leaves it too little
(`GPU_CHECK_AWQ_RESERVE`, default 240 s), and steps that would start after it are skipped. `tools/gpu_check.sh` prepares the
wheels and the environment on the GPU machine and writes `kddcup24/measured/gpu-check.json`.
"""
from __future__ import annotations
import argparse, gc, json, math, os, random, shlex, shutil, signal, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="where the steps run (default cuda)")
    p.add_argument("--scale", choices=["7b", "small", "tiny"], default=None, help="the random model (default 7b on cuda, tiny on cpu)")
    p.add_argument("--workdir", default=None, help="folder for the models, adapters and checkpoints (default: a temp folder)")
    p.add_argument("--json", default=None, help="write the results here (default WORKDIR/gpu-check.json)")
    p.add_argument("--commit", default=os.environ.get("GPU_CHECK_COMMIT"), help="the git commit checked (default $GPU_CHECK_COMMIT, else `git rev-parse HEAD`)")
    p.add_argument("--steps", type=int, default=None, help="training steps N in all (default 6 on cuda, 4 on cpu)")
    p.add_argument("--save-at", type=int, default=None, help="the checkpoint K the run is stopped at and resumed from (default N/2)")
    p.add_argument("--records", type=int, default=400, help="synthetic training records (default 400)")
    p.add_argument("--tp", type=int, default=4, help="tensor_parallel given to quantize_awq (default 4, the winners' 4xT4)")
    p.add_argument("--hardware", default=None, help="the plan's hardware profile (default 1xH200 on cuda, cpu on cpu)")
    p.add_argument("--budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET", 0)), help="seconds the run may take (0: no limit)")
    p.add_argument("--awq-scale", choices=["auto", "same", "small"], default="auto",
                   help="AWQ on the checked model (same), on the small scale (small), or small only when the budget is short (auto)")
    p.add_argument("--keep", action="store_true", help="keep every model folder (default: delete those no later step reads)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="one more recipe override (repeatable)")
    a = p.parse_args(argv)
    a.scale = a.scale or ("7b" if a.device == "cuda" else "tiny")
    if a.device == "cpu" and a.scale != "tiny": p.error("--device cpu runs the tiny scale only")
    a.steps = a.steps or (6 if a.device == "cuda" else 4)
    a.save_at = a.save_at or max(1, a.steps // 2)
    if not 0 < a.save_at < a.steps: p.error(f"--save-at must lie in 1..{a.steps - 1}")
    a.hardware = a.hardware or ("1xH200" if a.device == "cuda" else "cpu")
    return a

ARGV = sys.argv[1:]
ARGS = parse_args(ARGV)
if ARGS.device == "cpu": os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch: llm-compressor would pick a GPU on its own
for k, v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
             "WANDB_DISABLED": "true", "TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items(): os.environ.setdefault(k, v)
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

import torch

CUDA = ARGS.device == "cuda"
GPU = CUDA and torch.cuda.is_available()
DTYPE = "bfloat16" if CUDA else "float32"
GiB = 2**30
RESULTS = []   # one row per step
STATE = {}     # what a step leaves for the next ones
T0 = time.time()

class Skip(Exception): "A step that cannot run here (the reason is its detail)."
TIME_SKIP = "not run: the time budget is spent"
class OutOfTime(BaseException): "The time budget (--budget) ended inside a step (a BaseException: no library's `except Exception` swallows it)."

def _alarm(signum, frame): raise OutOfTime(f"the time budget of {ARGS.budget:.0f} s ended {time.time() - T0:.0f} s into the run, inside this step")
signal.signal(signal.SIGALRM, _alarm)

def gib(x): return round(x / GiB, 2)

def free_gpu():
    gc.collect()
    if GPU: torch.cuda.empty_cache()

def step(name, plan=None):
    "Run the decorated function as one step now: ok / FAILED / skipped, seconds, peak GPU memory; `plan(row)` adds the plan's figures."
    def run(fn):
        print(f"\n=== {name}", flush=True)
        if GPU: torch.cuda.reset_peak_memory_stats()
        t0 = time.time()
        try:
            if ARGS.budget and t0 - T0 > ARGS.budget - 5: raise Skip(f"{TIME_SKIP} ({ARGS.budget:.0f} s)")
            if ARGS.budget: signal.alarm(max(1, int(ARGS.budget - (t0 - T0))))  # the step stops where the budget ends: the tables still come
            try: status, detail = "ok", fn() or ""
            finally: signal.alarm(0)
        except Skip as e: status, detail = "skipped", str(e)
        except (Exception, OutOfTime) as e:
            traceback.print_exc()
            status, detail = "FAILED", f"{type(e).__name__}: {e}".replace("\n", " ")[:400]
        dt = time.time() - t0
        row = {"step": name, "status": status, "seconds": round(dt, 1), "gpu_peak_gib": gib(torch.cuda.max_memory_allocated()) if GPU else None,
               "detail": detail}
        if plan and status == "ok":
            try: row["plan"] = plan(row)
            except Exception as e: row["plan"] = {"error": f"{type(e).__name__}: {e}"}
        RESULTS.append(row)
        free_gpu()
        print(f"--- {name}: {status} ({dt:.1f} s, GPU peak {row['gpu_peak_gib']} GiB) {detail}", flush=True)
        write_json()
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

VERSIONS = ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "bitsandbytes", "llmcompressor", "compressed-tensors",
            "mergekit", "pydantic", "pyarrow", "safetensors", "kddcup24")

def header():
    import platform
    print(f"python {platform.python_version()} ({sys.executable}); device {ARGS.device}; scale {ARGS.scale}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); cuda available: {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(f"GPU: {torch.cuda.get_device_name(0)}, {p.total_memory / GiB:.1f} GiB, capability {p.major}.{p.minor}")
    STATE["versions"] = {m: version(m) for m in VERSIONS}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in STATE["versions"].items()))
    if CUDA and not GPU: print("WARNING: --device cuda but torch sees no GPU: the CUDA steps will fail")

# ---------------------------------------------------------------- the random model
QWEN2_7B = "Qwen/Qwen2-7B-Instruct"  # its config ships in kddcup24/model_configs/ (what `kddcup24.plan._config` reads)

def scale_config(scale, tok):
    "Qwen2-7B-Instruct's config, cut down to `scale`; token ids are the check's tokenizer's."
    from importlib import resources
    d = json.loads((resources.files("kddcup24")/"model_configs"/f"{QWEN2_7B.split('/')[-1]}.json").read_text())
    d.pop("torch_dtype", None)
    d.update(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None, dtype=DTYPE)
    if scale == "small": d.update(num_hidden_layers=2, max_window_layers=2, intermediate_size=29568)  # Qwen2-72B's MLP width
    if scale == "tiny": d.update(hidden_size=128, intermediate_size=320, num_hidden_layers=2, max_window_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=2048)
    return d

def build_model(folder, scale):
    "A random Qwen2 of `scale` built on the check's device and saved in shards of 4 GB; returns (folder, parameters, bytes, seconds to save)."
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from kddcup24.models import tiny_qwen2
    folder = Path(folder)
    tok = AutoTokenizer.from_pretrained(tiny_qwen2(folder.with_name(folder.name + "-tok"), hidden=32))  # the BPE tokenizer, 400 tokens
    d = scale_config(scale, tok)
    cfg = AutoConfig.for_model(d.pop("model_type"), **d)
    torch.manual_seed(0)
    dev = "cuda" if GPU else "cpu"
    with torch.device(dev): model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, DTYPE))
    where = next(model.parameters()).device
    if where.type != dev: where = f"{where} (NOT {dev}: torch.device did not reach the model's construction)"
    n = sum(p.numel() for p in model.parameters())
    t0 = time.time()
    model.save_pretrained(folder, max_shard_size="4GB"); tok.save_pretrained(folder)
    secs = time.time() - t0
    del model; free_gpu()
    return folder, n, sum(f.stat().st_size for f in folder.glob("*.safetensors")), secs, where

def model_bytes(scale):
    "About what one copy of `scale` weighs on disk (for the disk check before it is built)."
    return {"7b": 7.62e9 * 2, "small": 1.79e9 * 2, "tiny": 3e5 * 4}[scale]

def models_dir(work, scale):
    "Where the model folders go: the workdir, or /dev/shm when only it has room for base + merged + wise-ft (+ AWQ); None: nowhere."
    need = 3.05 * model_bytes(scale) + 5e9 * (scale != "tiny")  # 3 copies at once (c2); checkpoints and adapters; AWQ's after base and merged go
    for d, sub in ((Path(work), Path(work)), (Path("/dev/shm"), Path("/dev/shm")/"kddcup24-gpu-check")):
        try:
            if shutil.disk_usage(d).free > need: sub.mkdir(parents=True, exist_ok=True); return sub, need
        except OSError: pass
    return None, need

# ---------------------------------------------------------------- synthetic ShopBench-style data
PRODUCTS = ["mouse pad", "dog leash", "camera", "trash bin", "kettle", "desk lamp", "backpack", "wrist watch", "yoga mat",
            "coffee grinder", "phone case", "running shoes", "water bottle", "hair dryer", "office chair", "bath towel"]
BRANDS = ["Acme", "Zenith", "Nordic", "Sunpeak", "Orbit", "Kestrel", "Maple", "Vega"]
COLORS = ["black", "white", "red", "blue", "green", "grey"]
WORDS = ("durable lightweight compact stainless steel cotton leather waterproof wireless rechargeable adjustable ergonomic portable "
         "premium classic modern soft sturdy washable foldable cordless quiet fast warranty gift home office travel kitchen outdoor "
         "size color pack set inch cm battery charger cable handle lid strap zipper pocket sole grip").split()

def question(rng, tt, filler):
    "One ShopBench-style record of task type `tt`, its question lengthened by up to `filler` words of product details."
    details = " ".join(rng.choices(WORDS, k=rng.randint(0, filler))) if filler else ""
    ctx = f"Product details: {details}\n" if details else ""
    if tt == "multiple-choice":
        opts = rng.sample(PRODUCTS, 4); a = rng.randrange(4)
        q = ctx + f"Which of the following products is best described as a {opts[a]}?\n" + "".join(f"{i}. {o}\n" for i, o in enumerate(opts)) + "Answer: "
        return dict(input_field=q, output_field=a, task_type=tt, metric="accuracy", is_multiple_choice=True)
    if tt == "retrieval":
        items = rng.sample(PRODUCTS, 6); pos = sorted(rng.sample(range(1, 7), 3))
        q = (ctx + f"A customer bought a {rng.choice(PRODUCTS)}. Select the 3 products the customer is most likely to buy next.\n"
             + "".join(f"{i}. {p}\n" for i, p in enumerate(items, 1)) + "Answer with the numbers separated by commas.")
        return dict(input_field=q, output_field=pos, task_type=tt, metric="hit rate@3", is_multiple_choice=False)
    if tt == "ranking":
        items = rng.sample(PRODUCTS, 5); w = [round(rng.random(), 2) for _ in items]
        q = (ctx + f"Rank the following products by relevance to the query '{rng.choice(COLORS)} {items[0]}'. You should output a permutation "
             "of 1 to 5. There should be a comma separating two numbers.\n" + "".join(f"{i}. {p}\n" for i, p in enumerate(items, 1)))
        return dict(input_field=q, output_field=w, task_type=tt, metric="ndcg", is_multiple_choice=False)
    if tt == "named_entity_recognition":
        b, c, p = rng.choice(BRANDS), rng.choice(COLORS), rng.choice(PRODUCTS)
        q = ctx + f"Please extract phrases from the query that correspond to the entity type 'brand'.\nQuery: {b} {c} {p}"
        return dict(input_field=q, output_field=[b], task_type=tt, metric="micro f1", is_multiple_choice=False)
    p = rng.choice(PRODUCTS)
    q = ctx + f"Write a one-sentence product description for a {rng.choice(COLORS)} {p}."
    return dict(input_field=q, output_field=f"A {p} that is durable, practical and easy to use.", task_type="generation",
                metric="rougel", is_multiple_choice=False)

def mixture(n, filler, seed=0):
    "`n` records in the mixture's form: ShopBench fields plus the chat `prompt`/`completion` (`kddcup24.prompts.chat_example`)."
    from kddcup24.prompts import chat_example
    rng = random.Random(seed)
    types = ["multiple-choice", "multiple-choice", "retrieval", "ranking", "named_entity_recognition", "generation"]
    out = []
    for i in range(n):
        r = question(rng, types[i % len(types)], filler)
        r.update(source="gpu-check/synthetic", task_name=f"synthetic-{r['task_type']}", tracks=[], **chat_example(r))
        out.append(r)
    return out

def write_jsonl(path, recs):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return Path(path)

# ---------------------------------------------------------------- recipe and plan
def recipe_overrides(base, plan=False):
    "`track5-gpu-7b` on the random model at the check's sizes; `plan`: the same with the recipe's full data (max_steps -1)."
    gpu = CUDA
    ov = [f"model.base={base}", f"model.dtype={DTYPE}", f"lora.load_in_4bit={'true' if gpu else 'false'}",
          "train.lr=5e-3",  # the random model's merged weights must move past bf16 rounding in a few steps
          f"train.batch_size={4 if gpu else 2}", f"train.grad_accum={4 if gpu else 1}", f"train.max_length={512 if gpu else 256}",
          "train.max_minutes=0", "train.warmup_ratio=0.0", "train.keep_checkpoints=-1", "merge.n_adapters=2",
          f"quant.calibration_samples={16 if gpu else 4}", f"quant.max_seq_length={256 if gpu else 128}"]
    if not gpu: ov += ["lora.r=8", "lora.alpha=16"]
    ov += [f"train.max_steps={ARGS.steps}", f"train.save_steps={ARGS.save_at}"] if not plan else []
    return ov + list(ARGS.set)

def recipe(base, plan=False):
    from kddcup24.core import load_recipe
    return load_recipe("track5-gpu-7b", recipe_overrides(base, plan))

def plan_for(base):
    "The plan's stage rows (`plan(recipe, hardware)`, the recipe's full data) and the terms the like-for-like comparisons use."
    import kddcup24.plan as kp
    hw = kp.HARDWARE[ARGS.hardware]
    rc, rp = recipe(base), recipe(base, plan=True)
    s = kp.model_shape(str(base))
    p = kp.plan(rp, hw.name)
    rows = {x["stage"]: {k: x[k] for k in ("gpu_gib", "host_gib", "minutes", "device", "dtype", "backend", "fits", "note")} for x in p["stages"]}
    w = s["params"] * {"float32": 4, "bfloat16": 2, "float16": 2}[rc.model.dtype]
    # the train stage's training alone (`kddcup24.plan.train_row`: the stage row adds its scoring pass), on the full data and on the check's recipe
    tr_full, tr = kp.train_row(rp, s, hw), kp.train_row(rc, s, hw)
    t = tr_full["terms"]
    secs = t["uncapped_minutes"] * 60
    return {"hardware": hw.name, "recipe": rp.name, "overrides": recipe_overrides(base, plan=True), "fits": p["fits"], "stages": rows,
            "shape": {k: s[k] for k in ("params", "linear_params", "hidden", "layers", "intermediate", "vocab")}, "weights_bytes": w,
            "train_gpu_gib": tr["gpu_gib"], "train_s_per_example": secs / t["examples"], "train_s_per_token": secs / (t["examples"] * t["tokens_per_example"]),
            "train_examples_full": t["examples"], "base_gib": round(tr["terms"]["base_gib"], 2), "disk_gbs": kp.DISK_GBS, "on_gpu": hw.n_gpus > 0}

def awq_terms(base, q):
    """The plan's AWQ terms for `base` (`kddcup24.plan.awq_row`, the quantize stage's calibration alone): the GPU's published-rate
    seconds, its FLOP term for the check's calibration tokens, and the GPU memory of one layer's search."""
    import kddcup24.plan as kp
    hw, s = kp.HARDWARE[ARGS.hardware], kp.model_shape(str(base))
    rc = recipe(base)
    row = kp.awq_row(rc, s, hw, "bfloat16")
    t = row["terms"]
    return {"calibration_tokens": t["calibration_tokens"], "published_rate_s": round(row["minutes"] * 60, 1),
            "flop_term_s": round(t["flop_minutes"] * 60, 1), "gpu_gib": round(t["work_gib"], 2) if hw.n_gpus else 0.0}

def plan_row(stage, like_gib, like_s, how, scaled=None, like=""):
    "What the plan says beside a step: its stage row (full stage, recipe's data) and its term for what the step did; `like`: which is like-for-like."
    P = STATE["plan"]
    out = {"stage_row": stage, "stage_gpu_gib": P["stages"][stage]["gpu_gib"], "stage_minutes": P["stages"][stage]["minutes"],
           "like_gpu_gib": like_gib, "like_seconds": None if like_s is None else round(like_s, 3), "like_for_like": like, "how": how}
    if scaled: out["scaled"] = scaled
    return out

# ---------------------------------------------------------------- tensors
def read_tensors(folder, keys):
    "Tensors `keys` from the safetensors shards of `folder` (float32)."
    from safetensors import safe_open
    out = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            for k in set(h.keys()) & set(keys): out[k] = h.get_tensor(k).float()
    missing = set(keys) - set(out)
    if missing: raise AssertionError(f"{folder}: no tensors {sorted(missing)[:3]}")
    return out

def lora_deltas(adapter, modules):
    "s·B·A (float32) of `adapter` for each weight name in `modules` (names as in the base model)."
    cfg = json.loads((Path(adapter)/"adapter_config.json").read_text()); s = cfg["lora_alpha"] / cfg["r"]
    t = read_tensors(adapter, [f"base_model.model.{m[:-len('.weight')]}.lora_{x}.weight" for m in modules for x in "AB"])
    return {m: s * t[f"base_model.model.{m[:-len('.weight')]}.lora_B.weight"] @ t[f"base_model.model.{m[:-len('.weight')]}.lora_A.weight"] for m in modules}

def checked_modules(adapter, layers):
    "The base weight names the adapter changes in decoder layers `layers`."
    from safetensors import safe_open
    with safe_open(str(Path(adapter)/"adapter_model.safetensors"), "pt") as h: keys = list(h.keys())
    mods = sorted({k[len("base_model.model."):-len(".lora_A.weight")] + ".weight" for k in keys if ".lora_A." in k})
    return [m for m in mods if any(f".layers.{i}." in m for i in layers)]

def rounding_err(got, want, ref, dtype):
    "max |got - want| in units of the tolerance: 1 bf16 ulp of |ref| for 16-bit weights, 1e-6 relative (+1e-7) for float32."
    rel = 2.0**-7 if dtype in ("bfloat16", "float16") else 1e-6
    return float(((got - want).abs() / (rel * ref.abs() + 1e-7)).max())

def finite_losses(tr):
    ls = [h["loss"] for h in tr.state.log_history if "loss" in h]
    if not ls: raise AssertionError("no loss logged")
    if not all(math.isfinite(x) for x in ls): raise AssertionError(f"non-finite loss: {ls}")
    return ls

def step_counter():
    "A trainer callback recording every global step it sees end (the resumed run must start after the checkpoint)."
    from transformers import TrainerCallback
    class _Count(TrainerCallback):
        seen = []
        def on_step_end(self, args, state, control, **kw): self.seen.append(state.global_step)
    return _Count()

def write_json():
    "The results in the measurement format of `kddcup24/measured/` (written after every step)."
    from kddcup24.run import git_commit
    path = Path(ARGS.json or Path(STATE.get("work", "."))/"gpu-check.json")
    commit = ARGS.commit or git_commit() or "unknown (no .git here: pass --commit or GPU_CHECK_COMMIT)"
    try:
        from kddcup24.plan import HARDWARE, detect_hardware
        machine = HARDWARE[detect_hardware()].note
    except Exception as e: machine = f"unknown ({type(e).__name__})"
    gpu = None
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0); gpu = f"{torch.cuda.get_device_name(0)}, {p.total_memory / GiB:.1f} GiB, sm{p.major}{p.minor}"
    n = {k: sum(r["status"] == k for r in RESULTS) for k in ("ok", "skipped", "FAILED")}
    body = {"command": os.environ.get("GPU_CHECK_COMMAND") or "python tools/gpu_check.py " + " ".join(shlex.quote(x) for x in ARGV),
            "git_commit": commit, "machine": machine, "gpu": gpu, "device": ARGS.device, "scale": ARGS.scale, **STATE.get("scale_info", {}),
            "dtype": DTYPE, "versions": STATE.get("versions"), "seconds": round(time.time() - T0, 1), "counts": n,
            "model": STATE.get("model_info"), "plan": {k: v for k, v in STATE.get("plan", {}).items() if k != "stages"} or None,
            "plan_stages": STATE.get("plan", {}).get("stages"), "steps": RESULTS}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp"); tmp.write_text(json.dumps(body, indent=1)); os.replace(tmp, path)
    return path

# ---------------------------------------------------------------- the steps
def main():
    import tempfile
    header()
    work = Path(ARGS.workdir or tempfile.mkdtemp(prefix="kddcup24-gpu-check-")); work.mkdir(parents=True, exist_ok=True)
    STATE["work"] = str(work)
    print(f"workdir {work}")
    K, N = ARGS.save_at, ARGS.steps

    @step(f"setup: random {ARGS.scale} Qwen2 on {ARGS.device}")
    def _():
        from kddcup24.shopbench import load_records
        scale, why = ARGS.scale, ""
        mdir, need = models_dir(work, scale)
        if mdir is None and scale == "7b":
            why = f"7b needs ~{need / 1e9:.0f} GB of disk for base + merged + wise-ft, neither {work} nor /dev/shm has it: SCALE FELL BACK to small"
            print(f"WARNING: {why}"); scale = ARGS.scale = "small"; mdir, need = models_dir(work, scale)
        if mdir is None: raise AssertionError(f"{scale} needs ~{need / 1e9:.1f} GB of disk, neither {work} nor /dev/shm has it")
        STATE["scale_info"] = {"scale_asked": STATE.get("scale_asked", scale), **({"scale_fallback": why} if why else {})}
        STATE["mdir"] = mdir
        folder, n, nbytes, save_s, where = build_model(Path(mdir)/f"base-{scale}", scale)
        STATE["base"] = folder
        STATE["plan"] = plan_for(folder)
        STATE["model_info"] = {"folder": str(folder), "params": n, "bytes": nbytes, **STATE["plan"]["shape"],
                               "shards": len(list(folder.glob("*.safetensors"))), "save_seconds": round(save_s, 1)}
        rc = recipe(folder)
        filler = 20 if rc.train.max_length >= 512 else 0  # ~256 tokens an example at max_length 512 (min(max_length, 512)/2, as the plan assumes)
        STATE["train"] = load_records(write_jsonl(work/"mix"/"train.jsonl", mixture(ARGS.records, filler, seed=0)))
        from kddcup24.models import load_tokenizer
        tok = load_tokenizer(str(folder))
        lens = [len(tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=True)["input_ids"]) for r in STATE["train"]]
        STATE["mean_tokens"] = sum(lens) / len(lens)
        P = STATE["plan"]
        return (f"{n / 1e9:.2f}B parameters ({P['shape']['layers']} layers, hidden {P['shape']['hidden']}, MLP {P['shape']['intermediate']}, "
                f"vocab {P['shape']['vocab']}) built on {where} in {DTYPE}, {nbytes / 1e9:.2f} GB saved in {save_s:.1f} s "
                f"({nbytes / 1e9 / max(save_s, 1e-3):.2f} GB/s) to {mdir}; {len(lens)} records of {min(lens)}-{max(lens)} tokens "
                f"(mean {STATE['mean_tokens']:.0f}); plan on {P['hardware']}: {'fits' if P['fits'] else 'does NOT fit'}" + (f"; {why}" if why else ""))

    def base(): 
        if "base" not in STATE: raise Skip("needs the random model of the setup")
        return STATE["base"]

    @step("a. QLoRA load (train.load_base, 4-bit NF4)",
          plan=lambda row: plan_row("train", STATE["plan"]["base_gib"], None, "GPU: the plan's base term of the train stage (NF4 + double quant, "
                                    "4.127 bits a Linear weight, 16 bits the rest); no time term: the plan does not time the load", like="GiB"))
    def _():
        b = base()
        if not CUDA: raise Skip("QLoRA needs CUDA and bitsandbytes (lora.load_in_4bit on a CPU raises in load_base)")
        import bitsandbytes as bnb
        from kddcup24.gpu import cuda_devices, rank_device_map
        from kddcup24.train import load_base
        model, tok = load_base(recipe(b))
        lin = model.model.layers[0].self_attn.q_proj
        if not isinstance(lin, bnb.nn.Linear4bit): raise AssertionError(f"q_proj is {type(lin).__name__}, not bitsandbytes Linear4bit")
        n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
        want = rank_device_map(1, 0, cuda_devices())
        got = getattr(model, "hf_device_map", None)
        if want == {"": 0} and got not in ({"": 0}, {"": "cuda:0"}): raise AssertionError(f"device map {got}, rank_device_map asked {want}")
        if lin.weight.device.type != "cuda": raise AssertionError(f"Linear4bit weight on {lin.weight.device}")
        STATE["model"] = (model, tok)
        return (f"{n4} Linear4bit ({getattr(lin.weight, 'quant_type', '?')}, bnb {bnb.__version__}), device map {got} (rank_device_map: {want}), "
                f"compute dtype {getattr(lin, 'compute_dtype', '?')}, {gib(torch.cuda.memory_allocated())} GiB held")

    def train_plan(row):
        P, n_tok, n_ex = STATE["plan"], STATE["b_tokens"][row["step"][:2]], STATE["b_examples"][row["step"][:2]]
        return plan_row("train", P["train_gpu_gib"], P["train_s_per_token"] * n_tok,
                        f"GPU: the plan's training alone on this recipe (`plan._train`: batch, max_length, r, checkpointing; every row assumed "
                        f"max_length long, so an upper bound); time: the plan's seconds per token on the full data x the {n_tok} tokens "
                        f"trained here (compute only: the measured seconds include the trainer's start{' and the base load' if row['step'].startswith('b2') else ''})",
                        scaled={"per_example_s": round(P["train_s_per_example"] * n_ex, 3), "examples": n_ex, "tokens": n_tok},
                        like="GiB (plan: upper bound); sec: compute only")
    STATE["b_tokens"], STATE["b_examples"] = {}, {}

    @step(f"b1. train {K} of {N} steps, checkpoint-{K} saved (train_adapter)", plan=train_plan)
    def _():
        b = base()
        from kddcup24.train import StopAt, last_checkpoint, load_base, sft_config, train_adapter
        rc = recipe(b)
        cfg = sft_config(rc, work/"cfg-probe", max_steps=N)
        if CUDA and not (cfg.bf16 and not cfg.use_cpu): raise AssertionError(f"sft_config on CUDA: bf16={cfg.bf16} use_cpu={cfg.use_cpu}")
        model, tok = STATE.pop("model", None) or load_base(rc)  # (a)'s QLoRA base; on a CPU (or when (a) failed) the recipe's own load
        ck_dir = work/"checkpoints"; shutil.rmtree(ck_dir, ignore_errors=True)
        t0 = time.time()
        pm, tok, tr, out = train_adapter(rc, STATE["train"], ck_dir, None, max_steps=N, callbacks=[StopAt(K)], model=model, tok=tok)
        dt = time.time() - t0
        ck = last_checkpoint(ck_dir)
        if ck is None or ck.name != f"checkpoint-{K}": raise AssertionError(f"the newest complete checkpoint is {ck}, not checkpoint-{K}")
        st = json.loads((ck/"trainer_state.json").read_text())
        if st["global_step"] != K or tr.state.global_step != K: raise AssertionError(f"stopped at {tr.state.global_step}, checkpoint at {st['global_step']}, not {K}")
        ls = finite_losses(tr)
        STATE["ckpt"], STATE["b_tokens"]["b1"] = ck, int(tr.state.num_input_tokens_seen)
        STATE["b_examples"]["b1"] = K * rc.train.batch_size * rc.train.grad_accum
        dev, qlora = next(tr.model.parameters()).device, type(tr.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__
        mb = sum(f.stat().st_size for f in ck.iterdir() if f.is_file()) / 1e6
        return (f"{K} steps on {dev} ({qlora} base, {type(tr).__name__}), loss {ls[0]:.3f} -> {ls[-1]:.3f}, "
                f"{tr.state.num_input_tokens_seen / dt:.0f} tok/s, {ck.name} {mb:.0f} MB (adapter + optimizer)")

    @step(f"b2. resume from checkpoint-{K} to {N} (train_adapter resume=True)", plan=train_plan)
    def _():
        if "ckpt" not in STATE: raise Skip("needs the checkpoint of step b1")
        from kddcup24.train import load_base, train_adapter
        rc = recipe(base())
        held = f", {gib(torch.cuda.memory_allocated())} GiB still held from b1 before the reload" if GPU else ""
        t0 = time.time(); model, tok = load_base(rc); load_s = time.time() - t0  # a resumed run is a new process: the base is loaded again
        st0 = json.loads((STATE["ckpt"]/"trainer_state.json").read_text())
        cnt = step_counter()
        pm, tok, tr, out = train_adapter(rc, STATE["train"], work/"checkpoints", work/"adapter-final", resume=True, max_steps=N,
                                         callbacks=[cnt], model=model, tok=tok)
        if not cnt.seen or cnt.seen[0] != K + 1 or tr.state.global_step != N:
            raise AssertionError(f"the resumed run stepped {cnt.seen[:3]}..{cnt.seen[-1:]} to global_step {tr.state.global_step}, not {K + 1}..{N}")
        ls = finite_losses(tr)
        fin, ck = (read_tensors(p, list(_keys(p))) for p in (work/"adapter-final", STATE["ckpt"]))
        if set(fin) != set(ck): raise AssertionError("the final adapter and the checkpoint's hold different tensors")
        moved = sum(not torch.equal(fin[k], ck[k]) for k in fin)
        if not moved: raise AssertionError(f"the resumed adapter equals checkpoint-{K}'s: the resumed steps changed nothing")
        STATE["adapters"] = [STATE["ckpt"], work/"adapter-final"]
        new = int(tr.state.num_input_tokens_seen - st0.get("num_input_tokens_seen", 0))
        STATE["b_tokens"]["b2"], STATE["b_examples"]["b2"] = new, (N - K) * rc.train.batch_size * rc.train.grad_accum
        secs = time.time() - t0 - load_s
        return (f"global_step {st0['global_step']} -> {tr.state.global_step} (steps {cnt.seen[0]}..{cnt.seen[-1]} run), base reloaded in {load_s:.1f} s, "
                f"{moved}/{len(fin)} adapter tensors differ from checkpoint-{K}'s, loss {ls[0]:.3f} (step 1) -> {ls[-1]:.3f}, {new / secs:.0f} tok/s{held}")

    @step("c1. ensemble merge (merge_adapters = average_lora + merge_lora)",
          plan=lambda row: plan_row("ensemble", 0.0, 2 * STATE["plan"]["weights_bytes"] / 1e9 / STATE["plan"]["disk_gbs"],
                                    "the plan's merge term: on the host, no GPU, the weights read and written once at DISK_GBS "
                                    f"({STATE['plan']['disk_gbs']} GB/s, assumed); the stage row adds the wise-ft sweep on vLLM", like="GiB, sec"))
    def _():
        if len(STATE.get("adapters", [])) < 2: raise Skip("needs checkpoint-K and the final adapter of steps b1 and b2")
        from kddcup24.ensemble import merge_adapters
        b, ads, rc = base(), STATE["adapters"], recipe(base())
        t0 = time.time()
        merged = merge_adapters(str(b), ads, STATE["mdir"]/"ensemble", dtype=rc.model.dtype, adapter_out=work/"ensemble_adapter")  # as run_ensemble
        STATE["merge_s"] = time.time() - t0
        STATE["merged"] = merged
        layers = [0, STATE["plan"]["shape"]["layers"] - 1]
        mods = checked_modules(work/"ensemble_adapter", layers)
        d1, d2, da = (lora_deltas(a, mods) for a in (*ads, work/"ensemble_adapter"))
        mean = {m: (d1[m] + d2[m]) / 2 for m in mods}
        if all(float(d1[m].abs().max()) == 0 for m in mods): raise AssertionError("checkpoint-K's delta is zero: the check would be vacuous")
        if all(torch.equal(d1[m], d2[m]) for m in mods): raise AssertionError("checkpoint-K and the final adapter have identical deltas")
        err_avg = max(float((da[m] - mean[m]).abs().max() / (mean[m].abs().max() + 1e-12)) for m in mods)
        if err_avg > 1e-5: raise AssertionError(f"the averaged adapter's delta differs from the mean of the deltas by {err_avg:.1e} of its size")
        wb, wm = read_tensors(b, mods), read_tensors(merged, mods)
        exp = {m: (wb[m] + mean[m]).to(getattr(torch, rc.model.dtype)).float() for m in mods}
        err = max(rounding_err(wm[m], exp[m], exp[m], rc.model.dtype) for m in mods)
        if err > 1.0: raise AssertionError(f"merged weights differ from W_base + mean delta by {err:.2f} tolerances (1 ulp)")
        frac = sum(int((wm[m] != wb[m]).sum()) for m in mods) / sum(wm[m].numel() for m in mods)
        if frac == 0: raise AssertionError("the merged weights equal the base's: nothing to check")
        return (f"{len(mods)} weights of layers {layers}: averaged delta = mean of the 2 deltas (max rel diff {err_avg:.1e}), merged = "
                f"W_base + mean delta ({err:.2f} of 1 ulp at most, {frac:.0%} of weights moved); merge_adapters {STATE['merge_s']:.1f} s "
                f"({2 * STATE['plan']['weights_bytes'] / 1e9 / STATE['merge_s']:.2f} GB/s read + written)")

    @step("c2. wise-ft a=0.5 (wise_ft, mergekit)",
          plan=lambda row: plan_row("ensemble", 0.0, 3 * STATE["plan"]["weights_bytes"] / 1e9 / STATE["plan"]["disk_gbs"],
                                    "no wise-ft merge term in the plan (its sweep serves a as scaled LoRA on vLLM): the plan's disk rate "
                                    "applied to wise_ft's I/O (two models read, one written), on the host", like="GiB; sec: no plan term"))
    def _():
        if "merged" not in STATE: raise Skip("needs the merged model of step c1")
        from kddcup24.ensemble import wise_ft
        b, rc = base(), recipe(base())
        out = wise_ft(str(b), STATE["merged"], 0.5, STATE["mdir"]/"wise", dtype=rc.model.dtype)
        layers = [0, STATE["plan"]["shape"]["layers"] - 1]
        mods = checked_modules(work/"ensemble_adapter", layers) + ["model.norm.weight"]
        wb, wf, ww = (read_tensors(p, mods) for p in (b, STATE["merged"], out))
        exp = {m: (wb[m] + wf[m]) / 2 for m in mods}
        err = max(rounding_err(ww[m], exp[m], torch.maximum(wb[m].abs(), wf[m].abs()), rc.model.dtype) for m in mods)
        moved = sum(int((wf[m] != wb[m]).sum()) for m in mods)
        if not moved: raise AssertionError("the merged model equals the base: nothing to check")
        if err > 1.0: raise AssertionError(f"wise-ft weights differ from (W_base + W_ft)/2 by {err:.2f} tolerances")
        STATE["wise"] = out
        if not ARGS.keep:  # AWQ reads the wise-ft model only: free the disk (the 7B's three copies are 46 GB)
            for k in ("merged",): shutil.rmtree(STATE[k], ignore_errors=True)
        size = sum(f.stat().st_size for f in Path(out).glob("*.safetensors")) / 1e9
        return f"{len(mods)} tensors = (W_base + W_ft)/2 ({err:.2f} of the tolerance at most; {moved} weights moved by the merge), {size:.2f} GB written"

    def awq_plan(row):
        t = awq_terms(STATE["awq_base"], recipe(STATE["awq_base"]).quant)
        return plan_row("quantize", t["gpu_gib"], t["flop_term_s"],
                        f"GPU: the plan's AWQ working set for {t['calibration_tokens']} calibration tokens (one layer and its search copy, "
                        "activations; the model itself stays on the host); time: the plan's FLOP term for those tokens (20 grid points), "
                        f"while its GPU estimate is llm-compressor's published rate, {t['published_rate_s']:.0f} s for any calibration size "
                        "(the quantize stage row adds scoring on vLLM). Neither counts loading, packing and saving, which the measured seconds do",
                        scaled={"published_rate_s": t["published_rate_s"], "calibration_tokens": t["calibration_tokens"]},
                        like="GiB; sec: not like-for-like")

    @step(f"d. AWQ W4A16 g128 zero point, tensor_parallel={ARGS.tp} (quantize_awq)", plan=awq_plan)
    def _():
        from safetensors import safe_open
        from kddcup24.gpu import padded_intermediate
        from kddcup24.models import load_tokenizer
        from kddcup24.quantize import calibration_texts, quantize_awq
        src = STATE.get("wise") or STATE.get("merged") or base()
        what = "wise-ft model" if src == STATE.get("wise") else ("merged model (wise-ft failed)" if src == STATE.get("merged") else "base (earlier steps failed)")
        left = ARGS.budget - (time.time() - T0) if ARGS.budget else float("inf")
        reserve = float(os.environ.get("GPU_CHECK_AWQ_RESERVE", 240))
        if ARGS.awq_scale == "small" or (ARGS.awq_scale == "auto" and ARGS.scale == "7b" and left < reserve):
            why = "--awq-scale small" if ARGS.awq_scale == "small" else f"{left:.0f} s of the budget left, under the {reserve:.0f} s the 7B's AWQ is given"
            print(f"AWQ RUNS ON THE SMALL SCALE: {why}")
            if not ARGS.keep:
                for k in ("wise", "merged"):
                    if STATE.get(k): shutil.rmtree(STATE[k], ignore_errors=True)
            src, _, _, _, _ = build_model(STATE["mdir"]/"base-small", "small"); what = f"a fresh small random model, NOT the {ARGS.scale} ({why})"
            if GPU: torch.cuda.reset_peak_memory_stats()  # the peak is AWQ's, not the build's
            STATE["awq_scale"] = "small"
        elif not ARGS.keep and src == STATE.get("wise"): shutil.rmtree(STATE["base"], ignore_errors=True)  # only the wise-ft model is read now
        STATE["awq_base"] = src
        rc = recipe(src); q = rc.quant
        tok = load_tokenizer(str(src))
        texts = calibration_texts(STATE["train"], tok, n=q.calibration_samples)
        cfg0 = json.loads((Path(src)/"config.json").read_text())
        inter = cfg0["intermediate_size"]; pad = padded_intermediate(inter, ARGS.tp, q.group_size)
        try:
            from llmcompressor.utils.dev import get_main_device
            main_dev = str(get_main_device())
        except Exception: main_dev = "?"
        if CUDA and not main_dev.startswith("cuda"): raise AssertionError(f"llm-compressor would calibrate on {main_dev}, not CUDA")
        t0 = time.time()
        out = quantize_awq(src, STATE["mdir"]/"awq", texts, q.bits, q.group_size, q.zero_point, q.ignore, q.max_seq_length, rc.model.dtype, ARGS.tp)
        secs = time.time() - t0
        c = json.loads((Path(out)/"config.json").read_text()); qc = c["quantization_config"]
        w = qc["config_groups"]["group_0"]["weights"]
        got = (qc["quant_method"], w["num_bits"], w["group_size"], w["symmetric"], w["strategy"])
        if got != ("compressed-tensors", 4, 128, False, "group"): raise AssertionError(f"quantization_config {got}")
        if c["intermediate_size"] != pad: raise AssertionError(f"config.json intermediate_size {c['intermediate_size']}, padded_intermediate says {pad}")
        if pad != inter and c.get("intermediate_size_unpadded") != inter:
            raise AssertionError(f"config.json intermediate_size_unpadded {c.get('intermediate_size_unpadded')}, not {inter}")
        if pad == inter and "intermediate_size_unpadded" in c: raise AssertionError("intermediate_size_unpadded recorded though nothing was padded")
        tensors = {}
        for f in Path(out).glob("*.safetensors"):
            with safe_open(str(f), "pt") as h: tensors.update({k: (f, h.get_slice(k).get_shape()) for k in h.keys()})
        l0 = "model.layers.0.mlp."
        shapes = {k: tensors[l0 + k][1] for k in ("gate_proj.weight_packed", "down_proj.weight_packed") if l0 + k in tensors}
        hid = c["hidden_size"]
        if shapes.get("gate_proj.weight_packed", [pad])[0] != pad or shapes.get("down_proj.weight_packed", [hid, pad // 8])[1] != pad // 8:
            raise AssertionError(f"packed MLP shapes {shapes}, padded size {pad}")
        if not any(k.endswith("weight_zero_point") for k in tensors): raise AssertionError("no weight_zero_point tensors in the AWQ folder")
        bad = []
        for k in [k for k in tensors if k.endswith("weight_scale") and (".layers.0." in k or f".layers.{c['num_hidden_layers'] - 1}." in k)]:
            with safe_open(str(tensors[k][0]), "pt") as h:
                if not torch.isfinite(h.get_tensor(k).float()).all(): bad.append(k)
        if bad: raise AssertionError(f"non-finite AWQ scales in {bad[:3]}")
        STATE["awq"] = out
        size = sum(f.stat().st_size for f in Path(out).glob("*.safetensors")) / 1e9
        padded = (f"MLP {inter} padded to {pad} (config.json intermediate_size {c['intermediate_size']}, intermediate_size_unpadded "
                  f"{c.get('intermediate_size_unpadded')}), packed {shapes}" if pad != inter else
                  f"MLP {inter} = {inter // (q.group_size * ARGS.tp)} x {q.group_size} x {ARGS.tp}: no padding needed, none recorded")
        return (f"{what} -> {size:.2f} GB {qc.get('format', '?')}, {q.calibration_samples} calibration texts x {q.max_seq_length} tokens at most "
                f"(few and short, to fit the check's minutes), calibrated on {main_dev}, {secs:.0f} s; {padded}; scales of layers 0 and last finite")

    @step("e. AWQ folder loaded by transformers (compressed-tensors): finite logits")
    def _():
        if not STATE.get("awq"): raise Skip("needs the AWQ folder of step d")
        if ARGS.budget and ARGS.budget - (time.time() - T0) < 45: raise Skip("under 45 s of the time budget left")
        from kddcup24.models import load_model
        model, tok = load_model(str(STATE["awq"]), dtype=DTYPE, device_map="cuda" if CUDA else None)
        x = tok(["You are a helpful online shopping assistant. Which of the following products is a kettle?"], return_tensors="pt").to(model.device)
        with torch.no_grad(): logits = model(**x).logits
        if not torch.isfinite(logits).all(): raise AssertionError("non-finite logits from the AWQ model")
        mlp = model.model.layers[0].mlp
        return (f"{type(mlp.down_proj).__name__} down_proj, intermediate {model.config.intermediate_size} on {model.device}; logits "
                f"{tuple(logits.shape)} finite (random weights: their values mean nothing)")

    total = time.time() - T0
    w = max(len(r["step"]) for r in RESULTS)
    print(f"\n{'step':<{w}}  {'status':<7}  {'sec':>6}  {'GPU GiB':>7}  detail")
    for r in RESULTS:
        g = "-" if r["gpu_peak_gib"] is None else f"{r['gpu_peak_gib']:.2f}"
        print(f"{r['step']:<{w}}  {r['status']:<7}  {r['seconds']:>6.1f}  {g:>7}  {r['detail']}")
    P = STATE.get("plan")
    if P:
        print(f"\nmeasured vs the plan on {P['hardware']} (recipe {P['recipe']} with {' '.join(P['overrides'])})")
        print(f"{'step':<{w}}  {'GPU GiB':>7}  {'plan GiB':>8}  {'sec':>7}  {'plan sec':>8}  {'like-for-like':<42}  plan's stage row (whole stage, recipe's data)  see")
        notes = []
        for r in RESULTS:
            p = r.get("plan")
            if not p or "error" in p: continue
            g = "-" if r["gpu_peak_gib"] is None else f"{r['gpu_peak_gib']:.2f}"
            ls = "-" if p["like_seconds"] is None else f"{p['like_seconds']:.1f}" if p["like_seconds"] >= 10 else f"{p['like_seconds']:.2g}"
            if p["how"] not in notes: notes.append(p["how"])
            sr = f"{p['stage_row']}: {p['stage_gpu_gib']} GiB, {p['stage_minutes']} min"
            print(f"{r['step']:<{w}}  {g:>7}  {p['like_gpu_gib']:>8.2f}  {r['seconds']:>7.1f}  {ls:>8}  {p['like_for_like']:<42}  {sr:<45}  [{notes.index(p['how']) + 1}]"
                  + (f" {p['scaled']}" if p.get("scaled") else ""))
        for i, h in enumerate(notes, 1): print(f"  [{i}] {h}")
        print("  plan GiB / plan sec: the plan's term for what the step did, as [n] says; 'like-for-like' names which of the two compare "
              "directly with the measured figure. The stage row is the plan's whole stage on the recipe's full data (500k examples, "
              "its scoring passes on vLLM): not comparable with one step here")
    failed = [r["step"] for r in RESULTS if r["status"] == "FAILED"]
    late = [r["step"] for r in RESULTS if r["status"] == "skipped" and r["detail"].startswith(TIME_SKIP)]
    n = {k: sum(r["status"] == k for r in RESULTS) for k in ("ok", "skipped", "FAILED")}
    print(f"\n{n['ok']} ok, {n['skipped']} skipped, {n['FAILED']} FAILED in {total:.0f} s" + (f": {failed}" if failed else ""))
    if late: print(f"INCOMPLETE: {len(late)} steps not run for want of time ({ARGS.budget:.0f} s budget): {late}")
    if STATE.get("awq_scale") == "small": print("NOTE: AWQ ran on the small scale, not on the checked model (see step d)")
    if STATE.get("scale_info", {}).get("scale_fallback"): print(f"NOTE: {STATE['scale_info']['scale_fallback']}")
    print(f"results: {write_json()}")
    return 1 if failed or late else 0

def _keys(folder):
    from safetensors import safe_open
    with safe_open(str(Path(folder)/"adapter_model.safetensors"), "pt") as h: return list(h.keys())

if __name__ == "__main__":
    STATE["scale_asked"] = ARGS.scale
    sys.exit(main())
