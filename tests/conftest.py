import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def pytest_configure(config):
    config.addinivalue_line("markers", "registry: needs the package registry (CI has it); `-m 'not registry'` leaves these out")

def shared(sub: str) -> Path:
    "A folder of ../shared (overridable by env); required in CI, else the test is skipped."
    env = {"data": "KDDCUP24_DATA", "fixtures": "KDDCUP24_FIXTURES"}[sub]
    p = Path(os.environ.get(env) or ROOT.parent/"shared"/sub)
    if not p.is_dir():
        if os.environ.get("CI"): pytest.fail(f"{p} missing: CI must provide ../shared/{sub}")
        pytest.skip(f"{p} not available")
    return p

def small_mixture(tmp_path: Path, size: int, valid: int = 8) -> Path:
    "A training mixture of `size` records built by the data stage's own builder from a small copy of ../shared/data."
    from kddcup24.core import load_recipe
    from kddcup24.data import build_mixture
    from kddcup24.sources import sample_data
    small = sample_data(shared("data"), tmp_path/"data_small", per_file=max(10, size // 10))
    build_mixture(load_recipe("track5", [f"data.size={size}", f"data.valid_size={valid}"]), small, tmp_path/"mix", plots=False)
    return tmp_path/"mix"
