import os, re, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
_CONFIG = None  # pytest's config, to print past output capture
_DATA: dict = {}  # the session's one attempt to fetch the data: source, then path or (error, skip reason)

def pytest_configure(config):
    global _CONFIG
    _CONFIG = config
    config.addinivalue_line("markers", "registry: needs the package registry (CI has it); `-m 'not registry'` leaves these out")

def _say(msg: str):
    "A line on the terminal, past pytest's output capture (a fetch is worth knowing about while it runs)."
    capman = _CONFIG.pluginmanager.getplugin("capturemanager") if _CONFIG else None
    if capman is None: return print(msg)
    with capman.global_and_fixture_disabled(): print(f"\n{msg}", flush=True)

def _fetched_data(where: Path) -> Path:
    "The data layout fetched once per session into the cache, as `make run` does (checked against pinned sha256 sums); a skip saying why not."
    if not _DATA:
        from kddcup24 import sources
        url = os.environ.get("KDDCUP24_DATA_URL")
        manifest = sources.MIRROR if url else sources.PUBLIC  # as fetch_data chooses; files without a pinned sum are left out
        _DATA["source"] = f"the mirror {url}" if url else "the public homes (starter kit, EC-Guide on GitHub)"
        dest = sources.cache_dir()/"data"
        _say(f"tests: no data folder ({where}, KDDCUP24_DATA unset): fetching the data from {_DATA['source']} into {dest}, once")
        t0 = time.time()
        try:
            _DATA["path"] = sources.fetch_data(dest, files=[r for r, (_, h) in manifest.items() if h], progress=False)
            _say(f"tests: data ready in {dest} ({time.time() - t0:.0f} s)")
        except Exception as e:  # DownloadError (network, HTTP, checksum), or anything else: every data test says it
            msg = re.sub(r"HTTPS?ConnectionPool\(.*?\(Caused by (\w+).*", r"\1", f"{type(e).__name__}: {e}", flags=re.S)  # requests' long story: its cause
            _DATA["error"] = msg if len(msg) <= 240 else msg[:240] + "…"
            _DATA["short"] = f"no data: {where} is absent, KDDCUP24_DATA unset, fetching from {_DATA['source']} failed; `make test DATA=/path/to/data`"
            _DATA["skip"] = (f"no data: {where} is absent and KDDCUP24_DATA unset; give a folder holding shopbench/ and ec-guide/ "
                             f"(`make test DATA=/path/to/data`) or a mirror of it (KDDCUP24_DATA_URL=http://host/data make test). "
                             f"Fetching from {_DATA['source']} failed: {_DATA['error']}")
    if "skip" in _DATA: pytest.skip(_DATA["skip"])
    return _DATA["path"]

def shared(sub: str) -> Path:
    """A folder of ../shared (overridable by env): `data`, else the data fetched into the cache; `fixtures`.
    Required in CI; elsewhere a test that cannot have it is skipped with the reason (`pytest -rs` lists them)."""
    env = {"data": "KDDCUP24_DATA", "fixtures": "KDDCUP24_FIXTURES"}[sub]
    given = os.environ.get(env)
    p = Path(given or ROOT.parent/"shared"/sub)
    if p.is_dir(): return p
    if os.environ.get("CI"): pytest.fail(f"{p} missing: CI must provide ../shared/{sub}")
    if given: pytest.skip(f"{env}={given} is not a folder")
    if sub == "data": return _fetched_data(p)
    pytest.skip(f"no metric fixtures: {p} is absent and KDDCUP24_FIXTURES is unset. Its metric_cases.jsonl holds the official "
                f"ShopBench evaluator's scores: not public data, nothing fetches it; give its folder with KDDCUP24_FIXTURES=/path/to/fixtures")

def pytest_runtest_setup(item):
    "tests/test_fetch.py serves the data folder as a mirror checked against `sources.MIRROR` (../shared/data's sums): the public release differs."
    if item.path.name == "test_fetch.py" and "server" in getattr(item, "fixturenames", ()):
        if shared("data") == _DATA.get("path") and not os.environ.get("KDDCUP24_DATA_URL"):
            pytest.skip("serves the data folder as a mirror, whose sums are sources.MIRROR's (../shared/data); the public release "
                        "fetched here has other sums: give the mirror folder with `make test DATA=/path/to/shared/data`")

@pytest.fixture(autouse=True)
def _notebook_data(request, monkeypatch):
    "nbdev_test runs a notebook's tests in a subprocess that finds the data by KDDCUP24_DATA: the tests' own folder (or fetched data) when unset."
    if getattr(request.node, "originalname", None) != "test_notebook" or os.environ.get("KDDCUP24_DATA"): return
    try: monkeypatch.setenv("KDDCUP24_DATA", str(shared("data")))
    except pytest.skip.Exception: pass  # no data: the notebook runs without; a failure for that alone is a skip (below)

_NO_DATA = ("No data directory: pass one", "kddcup24.sources.DownloadError")  # core.data_dir's error without a folder; a failed fetch

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    "A notebook's tests that stop only for want of the data (none given, none fetched) are reported as skipped, saying why."
    rep = (yield).get_result()
    if call.when == "call" and rep.failed and getattr(item, "originalname", None) == "test_notebook" and "skip" in _DATA and not os.environ.get("KDDCUP24_DATA"):
        if any(s in str(rep.longrepr) for s in _NO_DATA):
            rep.outcome, rep.longrepr = "skipped", (str(item.path), item.location[1] + 1, f"{item.callspec.params['nb']}: its tests stopped at the missing data ({_DATA['short']})")

def pytest_terminal_summary(terminalreporter):
    if "path" in _DATA: terminalreporter.write_line(f"data: fetched from {_DATA['source']} into {_DATA['path']}")
    elif "skip" in _DATA: terminalreporter.write_line("data: none, the tests that need it are skipped (`pytest -rs` says why)")

def small_mixture(tmp_path: Path, size: int, valid: int = 8) -> Path:
    "A training mixture of `size` records built by the data stage's own builder from a small copy of ../shared/data."
    from kddcup24.core import load_recipe
    from kddcup24.data import build_mixture
    from kddcup24.sources import sample_data
    small = sample_data(shared("data"), tmp_path/"data_small", per_file=max(10, size // 10))
    build_mixture(load_recipe("track5", [f"data.size={size}", f"data.valid_size={valid}"]), small, tmp_path/"mix", plots=False)
    return tmp_path/"mix"
