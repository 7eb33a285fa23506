"Acceptance of the inference engine (issue 4): router accuracy, zero-shot SmolLM2-135M scores on the 96 dev questions."
import json, os
from conftest import shared

def _dev():
    from kddcup24.shopbench import load_records
    return load_records(shared("data")/"shopbench"/"development.json")

def test_router_dev_and_ec_guide():
    from kddcup24.engine import router_accuracy
    acc, conf = router_accuracy(_dev())
    assert acc >= 0.95, conf
    ec = []
    for f in sorted((shared("data")/"ec-guide").glob("*/*.json")): ec += json.loads(f.read_text())
    acc, conf = router_accuracy(ec)
    print("EC-Guide router accuracy", acc, conf)
    assert acc >= 0.95, conf

def test_engine_dev_scores():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from kddcup24.core import load_recipe
    from kddcup24.run import ModelRef, answer
    from kddcup24.shopbench import evaluate_records, parse_response
    dev = _dev()
    a = answer({"dev": dev}, [ModelRef("smollm2-135m", name="zs")], load_recipe("track5"))["zs"]["dev"]  # the scoring path every stage uses
    res, dt = a["responses"], a["seconds"]
    rep = evaluate_records([{**r, "response": s} for r, s in zip(dev, res)])[0]
    print(f"engine: {dt:.1f} s, tracks {rep['tracks']}, types { {t: x['score'] for t, x in rep['task_types'].items()} }")
    assert rep["tracks"]["5"] >= 0.18, rep["tracks"]
    assert rep["task_types"]["ranking"]["score"] > 0
    # every list answer parses into the right number of distinct items
    for r, s in zip(dev, res):
        if r["task_type"] == "retrieval": assert len(set(parse_response(s, "retrieval"))) == 3, s
        if r["task_type"] == "ranking": assert sorted(parse_response(s, "ranking")) == [1, 2, 3, 4, 5], s
        if r["task_type"] == "multiple-choice": assert s.isdigit() and len(s) == 1, s
