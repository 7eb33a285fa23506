"""The package's layout (issue 15): every module is in one layer, and the import rule between layers holds.

A stage imports the foundation, never another stage; the foundation never imports a stage; only the command line, the
pipeline and the docs builder import stages; and no module imports itself back through others (no cycle).
"""
import ast, re
from pathlib import Path
from conftest import ROOT

FOUNDATION = {"core", "shopbench", "models", "baseline", "prompts", "engine", "vllm_backend", "run", "plan", "sources", "gpu"}
STAGES = {"data", "synthetic", "train", "ensemble", "quantize", "serving", "submission", "report"}
RUNNERS = {"cli", "pipeline", "docs"}

def package_imports() -> dict[str, set[str]]:
    "Module -> the package modules it imports (top level or inside functions, absolute or relative)."
    out = {}
    for f in sorted((ROOT/"kddcup24").glob("*.py")):
        if f.name.startswith("_"): continue
        got = set()
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(n, ast.ImportFrom) and n.level and n.module: got.add(n.module.split(".")[0])
            elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("kddcup24."): got.add(n.module.split(".")[1])
            elif isinstance(n, ast.ImportFrom) and n.module == "kddcup24": got |= {a.name for a in n.names}
            elif isinstance(n, ast.Import): got |= {a.name.split(".")[1] for a in n.names if a.name.startswith("kddcup24.")}
        out[f.stem] = got - {f.stem}
    return out

def violations(imports: dict[str, set[str]]) -> list[str]:
    "The imports that break the rule, as 'a imports b (why)'."
    bad = []
    for m, deps in sorted(imports.items()):
        for d in sorted(deps):
            if m in RUNNERS: continue
            if d in STAGES: bad.append(f"{m} imports {d}: {'a stage' if m in STAGES else 'the foundation'} must not import a stage")
            if d in RUNNERS: bad.append(f"{m} imports {d}: only the runners import the runners")
    return bad

def test_every_module_has_one_layer():
    mods = set(package_imports())
    assert not (FOUNDATION & STAGES or FOUNDATION & RUNNERS or STAGES & RUNNERS)
    assert mods == FOUNDATION | STAGES | RUNNERS, f"unclassified: {sorted(mods - FOUNDATION - STAGES - RUNNERS)}; gone: {sorted(FOUNDATION | STAGES | RUNNERS - mods)}"

def test_import_rule():
    assert violations(package_imports()) == []

def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    "The import cycles, each as the modules along it, the first repeated at the end."
    out, done = [], set()
    def walk(m, path):
        if m in path: out.append(path[path.index(m):] + [m]); return
        if m in done: return
        for d in sorted(imports.get(m, ())): walk(d, path + [m])
        done.add(m)
    for m in sorted(imports): walk(m, [])
    return out

def test_no_import_cycle():
    assert cycles(package_imports()) == []
    assert cycles({"run": {"serving"}, "serving": {"run", "core"}, "core": set()}) == [["run", "serving", "run"]]

def test_the_checker_sees_a_violation():
    "The check itself: a stage importing a stage, the foundation importing a stage and a stage importing the CLI are caught."
    assert violations({"train": {"data"}, "engine": {"serving"}, "ensemble": {"cli", "run"}, "run": {"serving"}, "cli": {"train"}}) == [
        "engine imports serving: the foundation must not import a stage",
        "ensemble imports cli: only the runners import the runners",
        "run imports serving: the foundation must not import a stage",
        "train imports data: a stage must not import a stage"]

def test_each_notebook_names_its_module():
    "Every exporting notebook is named after the module it writes (`01d_engine.ipynb` -> kddcup24/engine.py)."
    import json
    for nb in sorted((ROOT/"nbs").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        exp = [l.split()[-1] for c in cells if c["cell_type"] == "code" for l in "".join(c["source"]).splitlines() if l.startswith("#| default_exp")]
        if exp: assert nb.stem.split("_", 1)[1] == exp[0], (nb.name, exp)

# Issue 36: readable lines. `ruff format` (configured once in pyproject.toml: 120 columns) gives one statement per line;
# comments, docstrings and long strings are wrapped in the notebooks. What nbdev writes itself is left out: `_modidx.py`
# (its index, pretty-printed at 140 columns) and the first line of each `__all__` (wrapped at 120 before nbdev prefixes
# `__all__ = `); neither is read or edited by hand.
WIDTH = 120

def long_lines(files) -> list[str]:
    "Lines over WIDTH characters, as 'file:line (length)'."
    return [f"{f.name}:{i} ({len(l)})" for f in files for i, l in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
            if len(l) > WIDTH and not l.startswith("__all__ = [")]

def test_no_long_line():
    files = [f for f in sorted((ROOT/"kddcup24").glob("*.py")) if f.name != "_modidx.py"]
    assert long_lines(files) == [], "run `ruff format nbs`, then `python tools/wrap_long_lines.py nbs/*.ipynb`, then nbdev_export"

def statements_per_line(src: str) -> list[int]:
    "Lines on which two or more statements start (`a = 1; b = 2`, `if x: y`)."
    starts = {}
    for n in ast.walk(ast.parse(src)):
        if isinstance(n, ast.stmt): starts[n.lineno] = starts.get(n.lineno, 0) + 1
    return sorted(l for l, k in starts.items() if k > 1)

def test_one_statement_per_line():
    bad = {f.name: statements_per_line(f.read_text(encoding="utf-8")) for f in sorted((ROOT/"kddcup24").glob("*.py"))}
    assert {k: v for k, v in bad.items() if v} == {}
    assert statements_per_line("a = 1; b = 2\nif a:\n    c = 3\nif b: d = 4\n") == [1, 4]

LIGHT = {"yaml", "packaging", "numpy"}

def inner_imports(src: str) -> list[str]:
    "Imports inside functions of the standard library, of the package or of a light library (they belong at the top)."
    import sys
    out = []
    for fn in ast.walk(ast.parse(src)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)): continue
        for n in ast.walk(fn):
            if isinstance(n, ast.Try): continue
            if isinstance(n, ast.ImportFrom): roots = ["kddcup24" if n.level else n.module.split(".")[0]]
            elif isinstance(n, ast.Import): roots = [a.name.split(".")[0] for a in n.names]
            else: continue
            out += [f"{n.lineno}: {ast.unparse(n)}" for r in roots[:1] if r in sys.stdlib_module_names or r in LIGHT or r == "kddcup24"]
    return out

def test_imports_at_the_top():
    "Only heavy or optional libraries are imported inside functions (each module says so once, beside its imports)."
    bad = {}
    for f in sorted((ROOT/"kddcup24").glob("*.py")):
        src = f.read_text(encoding="utf-8")
        if inner_imports(src): bad[f.name] = inner_imports(src)
        lazy = [n for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.Import, ast.ImportFrom)) and n.col_offset > 0]
        if lazy and "imported inside the functions" not in re.sub(r"\s*\n#\s*", " ", src): bad[f.name] = "imports inside functions without the comment that says why"
    assert bad == {}
    assert inner_imports("import torch\ndef f():\n    import json\n    from kddcup24.core import x\n    import torch\n") == [
        "3: import json", "4: from kddcup24.core import x"]
