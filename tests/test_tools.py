"""Tools that run outside the project's venv, checked here where their logic does not need that venv."""
import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import bench_runtimes


def model_folder(tmp: Path, rope: dict) -> Path:
    "A model folder as transformers 5 writes it: config.json with `rope_parameters`, and a weights file."
    d = tmp / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "rope_parameters": rope}))
    (d / "model.safetensors").write_bytes(b"weights")
    return d


def test_transformers_4_gets_rope_theta_where_it_reads_it(tmp_path, monkeypatch):
    "transformers 4 reads rope_theta at the config's top level only: the copy puts it there, the weights linked."
    import transformers

    src = model_folder(tmp_path, {"rope_theta": 100000.0, "rope_type": "default"})
    monkeypatch.setattr(transformers, "__version__", "4.57.6")
    (tmp_path / "t").mkdir()
    d, note = bench_runtimes.readable_model(str(src), tmp_path / "t")
    cfg = json.loads((Path(d) / "config.json").read_text())
    assert d != str(src) and cfg["rope_theta"] == 100000.0 and cfg["rope_parameters"]["rope_theta"] == 100000.0
    assert (Path(d) / "model.safetensors").resolve() == (src / "model.safetensors").resolve()
    assert "rope_theta 100000" in note and "4.57.6" in note
    assert json.loads((src / "config.json").read_text()).get("rope_theta") is None  # the original is left as it was


def test_transformers_5_reads_the_folder_as_it_is(tmp_path, monkeypatch):
    import transformers

    src = model_folder(tmp_path, {"rope_theta": 100000.0, "rope_type": "default"})
    monkeypatch.setattr(transformers, "__version__", "5.17.0")
    assert bench_runtimes.readable_model(str(src), tmp_path) == (str(src), "")


def test_a_rope_scaling_transformers_4_cannot_take_is_refused(tmp_path, monkeypatch):
    import transformers

    src = model_folder(tmp_path, {"rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0})
    monkeypatch.setattr(transformers, "__version__", "4.57.6")
    with pytest.raises(SystemExit, match="rope_type 'yarn'"):
        bench_runtimes.readable_model(str(src), tmp_path)
