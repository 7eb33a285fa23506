"Run every notebook's tests (nbdev_test) under pytest so CI counts them, one test per notebook."
import subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

NBS = sorted(p.name for p in (ROOT/"nbs").glob("*.ipynb") if not p.name.startswith("_"))

@pytest.mark.parametrize("nb", NBS)
def test_notebook(nb):
    bindir = Path(sys.executable).parent
    r = subprocess.run([str(bindir/"nbdev_test"), "--path", f"nbs/{nb}", "--n_workers", "0"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
