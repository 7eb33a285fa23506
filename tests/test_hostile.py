"The submission never raises (issue 17): `ShopBenchModel.batch_predict` on generated hostile batches (hypothesis), tiny random Qwen2."
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from kddcup24.engine import CUT, chat_prompt, route
from kddcup24.serving import ShopBenchModel
from kddcup24.shopbench import parse_response

@pytest.fixture(scope="module")
def sub(tmp_path_factory):
    "A submission on a tiny random Qwen2 (context 2,048 tokens), built once for the module."
    from kddcup24.models import load_model, tiny_qwen2
    model, tok = load_model(tiny_qwen2(tmp_path_factory.mktemp("tiny-qwen2")))
    return ShopBenchModel(model, tok)

def answers_parse(prompts, is_mc, out):
    "The interface's promises: one text per prompt, each read by the official parser as its routed type."
    assert isinstance(out, list) and len(out) == len(prompts), (len(prompts), out)
    for q, a in zip(prompts, out):
        assert isinstance(a, str), a
        t = route(q, is_mc)
        v = parse_response(a, t)
        if t == "multiple-choice": assert v >= 0, (q[:80], a)
        elif t in ("retrieval", "ranking"): assert v, (t, q[:80], a)

# --- generated text: any code point (control characters, RTL overrides, lone surrogates among them), mixed scripts, emoji
SAMPLES = ["Привет мир", "狗绳 鼠标垫", "مرحبا بالعالم", "\u202eevil\u202c", "😀🛒🐶👍🏽", "\x00\x07\x1b[31m\r\x7f\x85", "\u2028\u2029",
           "<|im_end|>", "<|im_start|>assistant\n", "<|endoftext|>", "Answer: ", "\n", "  ", "1.", "0)", "１２", "٣",
           "\ud800", "\udfff"]  # lone surrogates: a str may hold them (JSON's "\\ud800"), UTF-8 may not
chars = st.characters(exclude_categories=())  # any code point, surrogates included
text = st.one_of(st.text(chars, max_size=40), st.sampled_from(SAMPLES),
                 st.lists(st.sampled_from(SAMPLES), max_size=6).map("".join))
long_text = st.tuples(text, st.sampled_from([2_000, 20_000, 50_000])).map(lambda x: ((x[0] or "word ") * x[1])[:x[1]])  # long by repetition

@st.composite
def numbered(draw, start=None, lo=2, hi=12):
    "Numbered lines `0.`/`1)` ... with random texts."
    s = draw(st.sampled_from([0, 1])) if start is None else start
    sep = draw(st.sampled_from([". ", ") ", "."]))
    return "".join(f"{i}{sep}{draw(text)}\n" for i in range(s, s + draw(st.integers(lo, hi))))

@st.composite
def question(draw):
    "A dev-question-like template with random parts, or free text, empty, or very long."
    kind = draw(st.sampled_from(["mc", "mc", "rating", "retrieval", "ranking", "ner", "generation", "text", "empty", "long"]))
    t = lambda: draw(text)
    if kind == "mc": return f"{t()}\n{draw(numbered(lo=1, hi=5))}Answer: "
    if kind == "rating": return f"How would you rate {t()} on a scale of {draw(st.integers(0, 9))} to {draw(st.integers(0, 9))}?\nAnswer: "
    if kind == "retrieval": return f"Select the 3 products most relevant to {t()}.\n{draw(numbered(start=1, lo=1, hi=15))}Output: "
    if kind == "ranking": return f"Rank the products for {t()}.\n{draw(numbered(start=1))}You should output a permutation of 1 to 5.\nOutput: "
    if kind == "ner": return f"Please extract phrases from the query that correspond to the entity type '{t()}'.\nQuery: {t()}\nOutput: "
    if kind == "generation": return f"Instructions: {t()}\nInput: {t()}\nOutput: "
    if kind == "text": return t()
    if kind == "empty": return draw(st.sampled_from(["", " ", "\n"]))
    return draw(long_text) + draw(st.sampled_from(["", "\n0. a\n1. b\nAnswer: ", "\nOutput: "]))

@settings(max_examples=200, deadline=None, database=None,  # no example database left in the work tree
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(prompts=st.lists(question(), min_size=1, max_size=16), is_mc=st.booleans())
def test_batch_predict_never_raises(sub, prompts, is_mc):
    before = sub.fallbacks
    out = sub.batch_predict({"prompt": prompts}, is_mc)
    answers_parse(prompts, is_mc, out)
    assert sub.fallbacks == before, "the engine should answer these itself; the last-resort guard was used"

def test_50k_prompt_is_truncated_and_counted(sub):
    q = "Which product fits a dog? " + "lorem ipsum dolor sit amet " * 1900 + "\n0. leash\n1. mouse pad\n2. bin\nAnswer: "
    assert len(q) > 50_000
    e, n = sub.engine, sub.stats["truncated"]
    cut = e.fit(q, "multiple-choice", 1)
    assert CUT in cut and cut.endswith("2. bin\nAnswer: ") and len(e.tok(chat_prompt(e.tok, cut, "multiple-choice"))["input_ids"]) < e.context
    assert sub.stats["truncated"] == n + 1
    prompts = [q, "Describe a leash.\nOutput: "]
    out = sub.batch_predict({"prompt": prompts}, True)
    answers_parse(prompts, True, out)
    assert out[0] in ("0", "1", "2") and sub.stats == {"truncated": n + 2, "fallbacks": 0, "shortened": 0}
