import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def shared(sub: str) -> Path:
    "A folder of ../shared (overridable by env); required in CI, else the test is skipped."
    env = {"data": "KDDCUP24_DATA", "fixtures": "KDDCUP24_FIXTURES"}[sub]
    p = Path(os.environ.get(env) or ROOT.parent/"shared"/sub)
    if not p.is_dir():
        if os.environ.get("CI"): pytest.fail(f"{p} missing: CI must provide ../shared/{sub}")
        pytest.skip(f"{p} not available")
    return p
