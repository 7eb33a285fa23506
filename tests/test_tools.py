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


def test_compare_adapters_refuses_an_average_of_runs_it_was_not_given(tmp_path, capsys):
    "`--average-of` names runs among those given (at least two): anything else is one line and exit 2, before scoring."
    import compare_adapters

    runs = []
    for n in ("full", "h0", "h1"):
        (tmp_path / n / "sft").mkdir(parents=True)
        (tmp_path / n / "sft" / "adapter_config.json").write_text("{}")
        runs.append(str(tmp_path / n))
    for bad in (["h0", "other"], ["h0"], ["h0", "h1", "--no-average"]):
        with pytest.raises(SystemExit) as ex:
            compare_adapters.main([*runs, "--average-of", *bad, "--what", "x", "--out", str(tmp_path / "o.json")])
        assert ex.value.code == 2 and "--average-of h0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ex:  # a valid choice goes on to the mixture check: the next bad input
        compare_adapters.main(
            [*runs, "--average-of", "h0", "h1", "--recipe", "track5", "--what", "x", "--out", str(tmp_path / "o.json")]
        )
    assert ex.value.code == 2 and "no mixture (card.json)" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
