"""Write an AWQ-quantized tiny random Qwen2 (W4A16 with zero point, compressed-tensors) for the vLLM backend test.

Run with the main environment's Python, which has llm-compressor: `.venv/bin/python tests/helpers/awq_fixture.py OUT`.
`tests/test_vllm.py` does that, then loads OUT with vLLM in its own environment (the two conflict).
"""
import shutil, sys

def main(out):
    from kddcup24.models import tiny_qwen2, load_tokenizer
    from kddcup24.quantize import quantize_awq
    d = tiny_qwen2(hidden=128)  # every Linear has in/out features that are multiples of 32 and of the group size
    try:
        tok = load_tokenizer(d)
        texts = [tok.apply_chat_template([{"role": "user", "content": f"Question {i}: which product fits a {w}?"},
                                          {"role": "assistant", "content": f"The {w} one, number {i}."}], tokenize=False)
                 for i, w in enumerate(["phone", "laptop", "shoe", "kettle", "lamp", "desk", "bag", "watch"])]
        # the recipe the winners used (4 bit, zero point, lm_head kept); group 64 because the tiny model is 128 wide; tensor parallel 3
        # pads the MLPs from 256 to 384 (3 x 128: whole groups per GPU), so vLLM loads a padded folder as the 72B's at TP 4 is
        quantize_awq(d, out, texts, bits=4, group_size=64, zero_point=True, ignore=["lm_head"], tensor_parallel=3)
        import json
        from pathlib import Path
        cfg = json.loads((Path(out)/"config.json").read_text())
        assert (cfg["intermediate_size"], cfg["intermediate_size_unpadded"]) == (384, 256), cfg
    finally: shutil.rmtree(d, ignore_errors=True)
    print("AWQ fixture written to", out)

if __name__ == "__main__":
    main(sys.argv[1])
