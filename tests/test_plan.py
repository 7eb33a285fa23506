"`kddcup24 plan`: per-stage memory and time against a hardware profile (meta-device model shapes; no weights, no hub)."
import argparse, contextlib, io, json, resource
import pytest
from kddcup24.core import load_recipe
from kddcup24 import plan as P
from conftest import ROOT

ANSWERING = {"synthetic", "zero_shot", "ensemble", "quantize", "evaluate"}

def run_cli(*args):
    "Run `kddcup24 plan ARGS` in-process through the console script's entry point: (exit status, stdout)."
    from kddcup24.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try: main(["plan", *args]); code = 0
        except SystemExit as e: code = e.code
    return code, out.getvalue()

def test_bundled_configs_ship_with_the_package():
    for name, (hidden, layers) in {"Qwen2-72B-Instruct": (8192, 80), "Qwen2-7B-Instruct": (3584, 28)}.items():
        d = json.loads((ROOT/"kddcup24"/"model_configs"/f"{name}.json").read_text())
        assert (d["hidden_size"], d["num_hidden_layers"], d["model_type"], d["tie_word_embeddings"]) == (hidden, layers, "qwen2", False)

def test_qwen2_72b_shape_on_meta_device():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s = P.model_shape("Qwen/Qwen2-72B-Instruct")
    assert s["device"] == "meta" and abs(s["params"] / 72.71e9 - 1) < 0.01
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 2 * 2**20  # < 2 GiB grown (kB): no real weights
    assert (s["hidden"], s["layers"], s["heads"], s["kv_heads"], s["head_dim"], s["vocab"]) == (8192, 80, 64, 8, 128, 152064)
    assert s["linear_shapes"] == [(8192, 8192), (8192, 1024), (8192, 1024), (8192, 8192), (8192, 29568), (8192, 29568), (29568, 8192)]
    assert s["embed_params"] == 2 * 152064 * 8192 and 0 < s["params"] - s["linear_params"] - s["embed_params"] < 1e7
    assert abs(P.model_shape("Qwen/Qwen2-7B-Instruct")["params"] / 7.62e9 - 1) < 0.01

def test_unknown_model_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="No config for model"): P.model_shape("no-such/model-xyz")

def test_track5_gpu_fits_the_winners_training_box():
    p = P.plan(load_recipe("track5-gpu"), "8xA100-80G")
    assert p["fits"], [x["why"] for x in p["stages"]]
    assert [x["stage"] for x in p["stages"]] == ["synthetic", "data", "zero_shot", "train", "ensemble", "quantize", "evaluate"]
    assert all(x["backend"] == "vllm" for x in p["stages"] if x["stage"] in ANSWERING)
    fp32_72b = P.model_shape("Qwen/Qwen2-72B-Instruct")["params"] * 4 / 2**30
    assert all(x["host_gib"] < fp32_72b for x in p["stages"])  # never the 72B model in fp32 on the host
    assert all(set(x) == {"stage", "device", "dtype", "backend", "processes", "gpu_gib", "host_gib", "disk_gib", "minutes", "fits", "why", "note"} and x["why"] == ""
               for x in p["stages"])
    assert {x["stage"]: x["dtype"] for x in p["stages"]}["train"] == "nf4+bf16→bfloat16"  # QLoRA training, then its scoring pass on vLLM
    tr = {x["stage"]: x for x in p["stages"]}["train"]  # issue 33: the recipe's launch, one rank per GPU
    assert (tr["processes"], tr["backend"], tr["device"]) == (8, "trl (ddp x8)", "cuda:0-7")
    code, out = run_cli("--track", "5", "--recipe", "track5-gpu", "--hardware", "4xT4", "--json")
    ev = {x["stage"]: x for x in json.loads(out)["stages"]}["evaluate"]
    assert ev["fits"] and "max_model_len 3,072" in ev["note"] and "29,568 -> 29,696" in ev["note"], ev
    assert "track5-gpu" in P.format_plan(p) and P.format_plan(p).endswith("fits")

def test_track5_gpu_on_one_t4_does_not_fit_and_the_cli_exits_1():
    code, out = run_cli("--track", "5", "--recipe", "track5-gpu", "--hardware", "1xT4", "--json")
    p = json.loads(out)
    assert code == 1 and p["fits"] is False and p["hardware"] == "1xT4"
    why = {x["stage"]: x["why"] for x in p["stages"] if not x["fits"]}
    assert "tensor parallel 4 needs 4 GPUs" in why["zero_shot"] and "GiB per GPU exceeds" in why["train"]
    assert all(x["dtype"].split("→")[-1] != "bfloat16" for x in p["stages"])  # a T4 computes in fp16 (bf16 only on the host)

def test_four_t4_names_the_shortfalls():
    p = P.plan("track5-gpu", "4xT4")
    st = {x["stage"]: x for x in p["stages"]}
    assert not p["fits"] and "train.launch: zero3 or fsdp shards it" in st["train"]["why"]
    # issue 33: the AWQ model answers on the four T4s at the recipe's max_model_len, with its MLPs padded for tensor parallel 4
    assert st["evaluate"]["fits"] and "max_model_len 3,072" in st["evaluate"]["note"] and "29,568 -> 29,696" in st["evaluate"]["note"]

def test_track5_cpu_fits_this_machine():
    p = P.plan(load_recipe("track5"), "cpu")
    assert p["fits"], [x["why"] for x in p["stages"]]
    assert {x["device"] for x in p["stages"]} == {"cpu"} and {x["gpu_gib"] for x in p["stages"]} == {0.0}
    assert all(x["backend"] == "transformers" for x in p["stages"] if x["stage"] in ANSWERING)
    assert "synthetic" not in [x["stage"] for x in p["stages"]]
    s = P.model_shape("smollm2-135m")  # the embedded model's materialised config: tied embeddings, on meta
    assert (s["hidden"], s["layers"], s["tied"], s["device"]) == (576, 30, True, "meta") and abs(s["params"] / 134.5e6 - 1) < 0.01
    code, out = run_cli("--track", "5", "--hardware", "cpu")
    assert code == 0 and "does not fit" not in out

def test_qlora_needs_cuda():
    tr = next(x for x in P.plan("track5-gpu-7b", "cpu")["stages"] if x["stage"] == "train")
    assert not tr["fits"] and "QLoRA needs a CUDA GPU and bitsandbytes" in tr["why"]

def test_recipe_problems_refuse_missing_checkpoints():
    r = load_recipe("track5", ["train.max_steps=10", "train.save_steps=10", "merge.n_adapters=3"])
    bad = P.recipe_problems(r)
    assert len(bad) == 1 and "merge.n_adapters=3" in bad[0] and "saves only 1" in bad[0]
    ens = next(x for x in P.plan(r, "cpu")["stages"] if x["stage"] == "ensemble")
    assert not ens["fits"] and bad[0] in ens["why"]
    assert P.recipe_problems(load_recipe("track5")) == [] and P.recipe_problems(load_recipe("track5-gpu")) == []

def test_hardware_profiles_and_errors():
    cpu = P.HARDWARE["cpu"]
    assert cpu is P.HARDWARE["cpu"] and cpu.n_gpus == 0 and cpu.tflops > 0 and cpu.host_gib > 1  # measured once per process
    assert set(P.HARDWARE) >= {"cpu", "1xT4", "4xT4", "8xA100-80G", "1xH100"} and not P.HARDWARE["4xT4"].bf16
    with pytest.raises(ValueError, match="profiles: cpu, 1xT4, 4xT4"): P.plan("track5", "2xV100")
    code, _ = run_cli("--track", "5", "--hardware", "2xV100")
    assert code == 2  # a usage error, not "does not fit"
    import torch
    if not torch.cuda.is_available(): assert P.detect_hardware() == "cpu"
