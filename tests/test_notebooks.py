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

SKIP = {"slow", "gpu", "export"}

def uncommitted_displays(cells: list[dict]) -> list[int]:
    "Indices of cheap code cells that end in a value to display (a name, attribute or subscript) but carry no output."
    import ast
    bad = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "code": continue
        src = "".join(c["source"])
        flags = {l[2:].strip().split(":")[0].split()[0] for l in src.splitlines() if l.startswith("#|") and l[2:].strip()}
        if flags & SKIP or "eval: false" in src or src.rstrip().endswith(";"): continue
        try: body = ast.parse(src).body
        except SyntaxError: continue
        if body and isinstance(body[-1], ast.Expr) and isinstance(body[-1].value, (ast.Name, ast.Attribute, ast.Subscript)) and not c.get("outputs"):
            bad.append(i)
    return bad

@pytest.mark.parametrize("nb", NBS)
def test_cheap_outputs_are_committed(nb):
    "A reader on GitHub sees the tables: `make outputs` (kddcup24 docs --outputs) after editing a notebook."
    import json
    cells = json.loads((ROOT/"nbs"/nb).read_text(encoding="utf-8"))["cells"]
    assert uncommitted_displays(cells) == [], f"{nb}: cells {uncommitted_displays(cells)} show a value but carry no output; run `make outputs`"

def test_the_output_check_sees_a_missing_output():
    cell = lambda src, outputs=(): {"cell_type": "code", "source": [src], "outputs": list(outputs)}
    cells = [cell("df"), cell("df", [{"output_type": "execute_result"}]), cell("#| slow\ndf"), cell("plot(df);"), cell("x = 1"),
             cell("card['train']"), {"cell_type": "markdown", "source": ["df"]}]
    assert uncommitted_displays(cells) == [0, 5]

def parameter_names(src: str) -> tuple[list[str], list[str]]:
    "The names a parameters cell assigns, and those papermill's inspector reads (it skips a line whose comment holds '=')."
    import ast, nbformat
    from papermill.translators import PythonTranslator
    assigned = [n.target.id if isinstance(n, ast.AnnAssign) else n.targets[0].id
                for n in ast.parse(src).body if isinstance(n, (ast.Assign, ast.AnnAssign))]
    return assigned, [p.name for p in PythonTranslator.inspect(nbformat.v4.new_code_cell(src))]

@pytest.mark.parametrize("nb", NBS)
def test_papermill_reads_every_parameter(nb):
    "`papermill --help-notebook` and the pipeline see every parameter (an unreadable one prints a warning in `make run`)."
    import json
    for c in json.loads((ROOT/"nbs"/nb).read_text(encoding="utf-8"))["cells"]:
        if "parameters" in c.get("metadata", {}).get("tags", []):
            assigned, read = parameter_names("".join(c["source"]))
            assert read == assigned, f"{nb}: papermill reads {read} of {assigned}"

def test_the_parameter_check_sees_an_unreadable_line():
    assert parameter_names('a: int = 1  # one\nb: list = []  # e.g. ["x=1"]\n') == (["a", "b"], ["a"])

def later_defined_calls(cells: list[dict]) -> list[tuple[int, str, str]]:
    """`(cell, called, missing)` for each call a cell makes, when papermill runs the notebook top to bottom with `smoke`
    false, that reaches (through the notebook's own functions) a function the notebook defines only further down:
    a NameError in the pipeline. The body of `if smoke:` is skipped, and a name the cell imports is the module's."""
    import ast
    def tree(src):
        return ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
    defs, where = {}, {}  # notebook function -> its body, and the cell that defines it
    for i, c in enumerate(cells):
        if c["cell_type"] == "code" and "#| export" in "".join(c["source"]):
            for n in tree("".join(c["source"])).body:
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                    defs[n.name], where[n.name] = n, i
    called = lambda node: {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    bad = []
    for i, c in enumerate(cells):
        src = "".join(c["source"])
        if c["cell_type"] != "code" or "#| export" in src:
            continue
        t = tree(src)
        for n in ast.walk(t):  # the pipeline takes the else branch of `if smoke:`
            if isinstance(n, ast.If) and isinstance(n.test, ast.Name) and n.test.id == "smoke":
                n.body = [ast.Pass()]
        imported = {a.asname or a.name for n in ast.walk(t) if isinstance(n, ast.ImportFrom) for a in n.names}
        for name in sorted(called(t) - imported):
            if where.get(name, i) >= i:
                continue
            seen, todo = set(), [name]
            while todo:
                f = todo.pop()
                if f in seen or f not in defs:
                    continue
                seen.add(f)
                todo += called(defs[f])
            bad += [(i, name, f) for f in sorted(seen) if where[f] > i]
    return bad

@pytest.mark.parametrize("nb", sorted({s.notebook for s in __import__("kddcup24.pipeline").pipeline.PIPELINE}))
def test_the_pipeline_calls_nothing_defined_later(nb):
    "A stage notebook under papermill (`kddcup24 run`) never calls a function the notebook defines further down."
    import json
    cells = json.loads((ROOT/"nbs"/nb).read_text(encoding="utf-8"))["cells"]
    assert later_defined_calls(cells) == [], f"{nb}: (cell, called, defined further down) {later_defined_calls(cells)}"

def test_the_later_definition_check_sees_one():
    code = lambda src: {"cell_type": "code", "source": [src]}
    cells = [code("#| export\ndef run(): return curve()"), code("if smoke:\n    run()\nelse:\n    run()"),
             code("#| export\ndef curve(): return 1"), code("if smoke:\n    run()\nelse:\n    from m import run\n    run()")]
    assert later_defined_calls(cells) == [(1, "run", "curve")]
