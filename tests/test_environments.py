"""Issue 33: the environments install. The paper's setting is two environments, as on the CPU default, since vLLM pins
compressed-tensors 0.17 exactly and llm-compressor 0.19: `.venv` (`make gpu-env`: the `gpu` extra, training, merging,
quantizing) and `.venv-vllm` (the `serve` extra, the CUDA vLLM). Each requirement set is resolved here for a GPU machine,
Linux x86-64 (manylinux_2_31) with CPython 3.11, by uv from the registry's metadata alone: nothing is installed or built
that needs torch or a compiler. The tests marked `registry` need the package registry (CI has it); `-m "not registry"`
leaves them out.
"""
import os, re, runpy, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import ROOT

# The GPU machine's platform: glibc 2.31 or newer, since llguidance (which vLLM 0.32 needs) ships no older manylinux wheel.
PLATFORM, PYTHON = "x86_64-manylinux_2_31", "3.11"
# Every package comes as a wheel for that platform except these, which ship only a source archive and build without a
# compiler (deepspeed compiles its ops just in time, and its sdist's PKG-INFO carries its requirements, so nothing is built).
SDIST_ONLY = ("deepspeed", "rouge-score", "ipadic")

def setup_kwargs(monkeypatch) -> dict:
    "The keyword arguments setup.py passes to `setuptools.setup` (requirements and extras), read by running it."
    import setuptools
    got = {}
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(setuptools, "setup", lambda **kw: got.update(kw))
    runpy.run_path(str(ROOT/"setup.py"))
    return got

def requirements(kw:dict, extras:str) -> list[str]:
    "What `pip install .[extras]` asks for: the base requirements plus each extra's (`extras` comma-separated)."
    return kw["install_requires"] + [r for e in extras.split(",") for r in kw["extras_require"][e]]

def make_var(name:str) -> str:
    "A variable the Makefile sets (`NAME := value` or `NAME ?= value`)."
    m = re.search(rf"^{name}\s*[:?]?=\s*(\S+)\s*$", (ROOT/"Makefile").read_text(), re.M)
    assert m, f"the Makefile sets no {name}"
    return m.group(1)

def uv_bin() -> str:
    "uv (the `dev` extra): missing is a failure in CI, a skip on a developer machine without it."
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        if os.environ.get("CI"): pytest.fail("uv missing: `make test` installs it with the dev extra")
        pytest.skip("uv not installed (pip install uv)")

def resolve(reqs:list[str], tmp:Path) -> tuple[bool, dict[str, str], str]:
    """Resolve `reqs` for the GPU machine (PLATFORM, CPython PYTHON) from metadata alone, wheels only but for SDIST_ONLY.
    Returns (resolved, {name: version}, uv's messages); a conflict is `resolved` False with uv's explanation."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp/"requirements.in").write_text("\n".join(reqs) + "\n")
    cmd = [uv_bin(), "pip", "compile", "--no-config", "--quiet", "--no-header", "--no-annotate", "--python", sys.executable,
           "--python-platform", PLATFORM, "--python-version", PYTHON, "--only-binary", ":all:",
           *[a for p in SDIST_ONLY for a in ("--no-binary", p)], "requirements.in", "-o", "resolved.txt"]
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)
    print(f"resolved {len(reqs)} requirements in {time.monotonic() - t:.1f} s: exit {r.returncode}")
    if r.returncode and "No solution found" not in r.stderr:  # not a conflict: the registry or uv itself failed
        raise RuntimeError(f"uv pip compile failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (tmp/"resolved.txt").read_text(), re.M)) if not r.returncode else {}
    return not r.returncode, {k.lower(): v for k, v in pins.items()}, r.stderr

def test_no_extra_holds_vllm_and_llm_compressor(monkeypatch):
    "vLLM pins compressed-tensors 0.17, llm-compressor 0.19: no extra may ask for both (setup.py, read without the registry)."
    kw = setup_kwargs(monkeypatch)
    names = lambda rs: {re.split(r"[<>=!~\[; ]", r)[0].lower() for r in rs}
    both = [e for e, rs in kw["extras_require"].items() if "vllm" in names(rs) and names(rs) & {"llmcompressor", "compressed-tensors"}]
    assert both == [], f"extras {both} ask for vLLM and llm-compressor together"
    assert "vllm" not in names(kw["install_requires"])
    assert names(kw["extras_require"]["serve"]) == {"vllm"}
    assert {"bitsandbytes", "deepspeed", "llmcompressor", "peft", "mergekit"} <= names(kw["extras_require"]["gpu"])

def test_gpu_env_is_two_environments_found_like_cpu(monkeypatch, tmp_path):
    """`make gpu-env` builds .venv and .venv-vllm, where `kddcup24 run` looks for the vLLM environment as on CPU
    (KDDCUP24_VLLM_PYTHON, else the checkout's .venv-vllm); `make test` (CI) never builds it."""
    from kddcup24 import run
    assert make_var("VLLM_VENV") == ".venv-vllm" and make_var("VENV") == ".venv"
    assert set(make_var("GPU_EXTRAS").split(",")) >= {"gpu", "docs"} and make_var("SERVE_EXTRAS") == "serve"
    mk = (ROOT/"Makefile").read_text()
    assert re.search(r"^gpu-env:", mk, re.M) and "gpu-env" not in re.search(r"^test:(.*)$", mk, re.M).group(1)
    monkeypatch.delenv("KDDCUP24_VLLM_PYTHON", raising=False)
    own = Path(run.__file__).resolve().parents[1]/".venv-vllm"/"bin"/"python"  # the checkout `make gpu-env` ran in
    assert run.vllm_python() == (str(own) if own.exists() else None)
    py = tmp_path/"python"; py.touch()
    monkeypatch.setenv("KDDCUP24_VLLM_PYTHON", str(py))
    assert run.vllm_python() == str(py)

@pytest.mark.registry
def test_gpu_env_resolves(monkeypatch, tmp_path):
    "The training/merging/quantizing environment (`make gpu-env`'s .venv) resolves, with llm-compressor and no vLLM."
    ok, pins, err = resolve(requirements(setup_kwargs(monkeypatch), make_var("GPU_EXTRAS")), tmp_path)
    assert ok, err[-3000:]
    assert pins["compressed-tensors"] == "0.19.0" and pins["llmcompressor"] == "0.14.0.1" and "vllm" not in pins
    assert {"torch", "bitsandbytes", "deepspeed", "peft", "trl", "mergekit", "papermill", "ipykernel"} <= set(pins)

@pytest.mark.registry
def test_serve_env_resolves(monkeypatch, tmp_path):
    "The serving environment (`make gpu-env`'s .venv-vllm): the CUDA vLLM at settings.ini's range beside the base requirements."
    ok, pins, err = resolve(requirements(setup_kwargs(monkeypatch), make_var("SERVE_EXTRAS")), tmp_path)
    assert ok, err[-3000:]
    assert pins["vllm"].startswith("0.32.") and pins["compressed-tensors"] == "0.17.0" and "llmcompressor" not in pins
    assert {"torch", "transformers", "sentence-transformers"} <= set(pins)

@pytest.mark.registry
def test_resolve_reports_the_old_conflict(monkeypatch, tmp_path):
    "The old `gpu` extra (train + merge + quant + bitsandbytes, deepspeed and vLLM in one environment) is a conflict `resolve` reports."
    kw = setup_kwargs(monkeypatch)
    ok, pins, err = resolve(requirements(kw, "gpu,vllm"), tmp_path)
    assert not ok and pins == {}
    assert "No solution found" in err and "compressed-tensors" in err and "vllm" in err
