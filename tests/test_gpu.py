"""The GPU-only decisions, reached on a CPU with made-up devices (issue 33): where each training rank loads its 4-bit base,
what vLLM is started with, how many processes the train stage launches. The pure functions are tested in nbs/01h_gpu.ipynb;
these tests check that the stages really ask them."""
import sys, types
import pytest

def _fake_cuda(monkeypatch, n, capability=(8, 0), gib=80.0):
    "Make `torch.cuda` report `n` devices of `capability` (`gpu.fake_cuda`; nothing is allocated); record `set_device` calls."
    import torch
    from kddcup24.gpu import fake_cuda
    calls, fc = [], fake_cuda(n, "fake GPU", capability, gib)
    for k in ("is_available", "device_count", "get_device_properties"): monkeypatch.setattr(torch.cuda, k, getattr(fc, k))
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(("set_device", i)))
    return calls

@pytest.mark.parametrize("rank", [0, 3, 7])
def test_each_rank_loads_its_4bit_base_on_its_own_gpu(monkeypatch, rank):
    "Under an 8-GPU launch, rank k sets cuda:k and loads the QLoRA base with device_map {'': k} (not cuda:0 in every rank)."
    import transformers
    import kddcup24.train as train
    from kddcup24.core import load_recipe
    from kddcup24.train import load_base
    calls = _fake_cuda(monkeypatch, 8)
    monkeypatch.setenv("WORLD_SIZE", "8"); monkeypatch.setenv("LOCAL_RANK", str(rank))
    monkeypatch.setattr(train, "resolve_model", lambda name, *a, **k: name)  # the names train imported
    monkeypatch.setattr(train, "load_tokenizer", lambda *a, **k: "tok")
    def fake_load(name, **kw):
        calls.append(("load", kw["device_map"], kw["quantization_config"].load_in_4bit))
        return "model"
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_load)
    assert load_base(load_recipe("track5-gpu")) == ("model", "tok")
    assert calls == [("set_device", rank), ("load", {"": rank}, True)]

def test_one_process_on_one_gpu_takes_cuda0(monkeypatch):
    import transformers
    import kddcup24.train as train
    from kddcup24.core import load_recipe
    from kddcup24.train import load_base
    calls = _fake_cuda(monkeypatch, 1, (9, 0), 141.0)
    monkeypatch.delenv("WORLD_SIZE", raising=False); monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(train, "resolve_model", lambda name, *a, **k: name)  # the names train imported
    monkeypatch.setattr(train, "load_tokenizer", lambda *a, **k: "tok")
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda name, **kw: calls.append(kw["device_map"]) or "m")
    load_base(load_recipe("track5-gpu-7b"))
    assert calls == [{"": 0}]

def test_the_recipe_launches_its_train_stage(monkeypatch):
    "The GPU recipe's train stage is an accelerate launch of one process per GPU; the CPU default trains in one process."
    from kddcup24.core import load_recipe
    from kddcup24.train import launch_plan
    _fake_cuda(monkeypatch, 8)
    assert launch_plan(load_recipe("track5-gpu")) == ("ddp", 8)
    assert launch_plan(load_recipe("track5-gpu", ["train.launch=zero3", "train.processes=4"])) == ("zero3", 4)
    assert launch_plan(load_recipe("track5")) is None
    _fake_cuda(monkeypatch, 1, (9, 0))
    assert launch_plan(load_recipe("track5-gpu-7b")) is None   # one GPU: one process, no launcher

def test_vllm_gets_the_engine_arguments(monkeypatch):
    "vllm_backend.vllm_llm starts vLLM with what `gpu.vllm_engine_args` decides: fp16 on T4s, TP 4, 3,072 tokens, eager."
    from kddcup24.core import load_recipe
    from kddcup24 import vllm_backend
    got = {}
    fake_vllm = types.ModuleType("vllm")
    fake_vllm.LLM = lambda **kw: got.update(kw) or "llm"
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    _fake_cuda(monkeypatch, 4, (7, 5), 15.0)
    assert vllm_backend.vllm_llm("some/awq", load_recipe("track5-gpu")) == "llm"
    assert (got["dtype"], got["tensor_parallel_size"], got["max_model_len"], got["enforce_eager"], got["gpu_memory_utilization"]) == \
        ("float16", 4, 3072, True, 0.95)
    assert got["logits_processors"] == ["kddcup24.vllm_backend:PolicyLogitsProcessor"]
    _fake_cuda(monkeypatch, 8, (8, 0))
    got.clear(); vllm_backend.vllm_llm("some/model", load_recipe("track5-gpu"))
    assert got["dtype"] == "bfloat16"
