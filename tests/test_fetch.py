"Fetch: download the data layout from a mirror (a loopback HTTP server over ../shared/data); a broken or corrupt download leaves nothing."
import hashlib, threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
import pytest
from conftest import shared
import json, os, subprocess, sys
from pathlib import Path
from kddcup24.sources import MIRROR as MANIFEST, DownloadError, download, fetch_data

class Handler(SimpleHTTPRequestHandler):
    "Serves a folder with HTTP range support; `broken` paths die halfway, `corrupt` ones serve altered bytes."
    broken, corrupt, seen_ranges = set(), set(), []
    def log_message(self, *a): pass
    def do_GET(self):
        p = self.translate_path(self.path)
        try: data = open(p, "rb").read()
        except OSError: return self.send_error(404)
        rel = self.path.lstrip("/")
        if rel in self.corrupt: data = data[:-10] + b"X" * 10
        start = 0
        if (r := self.headers.get("Range")):
            start = int(r.split("=")[1].split("-")[0]); self.seen_ranges.append((rel, start))
            self.send_response(206); self.send_header("Content-Range", f"bytes {start}-{len(data)-1}/{len(data)}")
        else: self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body))); self.end_headers()
        if rel in self.broken:
            self.broken.discard(rel); self.wfile.write(body[:len(body)//2]); self.wfile.flush()
            self.close_connection = True; return
        self.wfile.write(body)

@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(shared("data"))))
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown(); srv.server_close()
    Handler.broken.clear(); Handler.corrupt.clear(); Handler.seen_ranges.clear()

def test_fetch_all_and_skip(server, tmp_path):
    dest = fetch_data(tmp_path/"data", base_url=server, progress=False)
    for rel, (size, sha) in MANIFEST.items():
        b = (dest/rel).read_bytes()
        assert len(b) == size and hashlib.sha256(b).hexdigest() == sha
    assert len((dest/"SHA256SUMS").read_text().splitlines()) == len(MANIFEST)
    mtime = (dest/"ec-guide/MCQ/SA.json").stat().st_mtime_ns
    fetch_data(dest, base_url=server, progress=False)  # everything verified: nothing downloaded again
    assert (dest/"ec-guide/MCQ/SA.json").stat().st_mtime_ns == mtime

def test_broken_download_leaves_nothing(server, tmp_path):
    rel = "ec-guide/Generation/PQA.json"
    Handler.broken.add(rel)
    with pytest.raises(DownloadError, match="nothing was kept"):
        fetch_data(tmp_path, base_url=server, files=[rel], progress=False)
    assert not (tmp_path/rel).exists() and list((tmp_path/rel).parent.iterdir()) == []  # no temporary file either
    fetch_data(tmp_path, base_url=server, files=[rel], progress=False)  # the retry
    assert hashlib.sha256((tmp_path/rel).read_bytes()).hexdigest() == MANIFEST[rel][1]

def test_corrupt_download_refused(server, tmp_path):
    rel = "shopbench/development.json"
    Handler.corrupt.add(rel)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_data(tmp_path, base_url=server, files=[rel], progress=False)
    assert not (tmp_path/rel).exists() and list((tmp_path/rel).parent.iterdir()) == []
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/nothing.json", tmp_path/"n.json", progress=False)

def test_cli_without_data_dir_fetches(server, tmp_path, monkeypatch):
    "`kddcup24 data` with no data folder fetches the layout from the mirror into the cache, then builds."
    import json
    from kddcup24.cli import main
    monkeypatch.delenv("KDDCUP24_DATA", raising=False)
    monkeypatch.setenv("KDDCUP24_DATA_URL", server); monkeypatch.setenv("KDDCUP24_CACHE", str(tmp_path/"cache"))
    main(["data", "--track", "4", "--out", str(tmp_path/"t4"), "--no-plots", "--set", "data.valid_size=20"])
    assert (tmp_path/"cache"/"data"/"SHA256SUMS").exists()
    card = json.loads((tmp_path/"t4"/"card.json").read_text())
    assert card["track"] == 4 and card["train"]["total"] > 1000 and card["valid"]["total"] == 20
    assert set(card["train"]["track"]) == {"1", "2", "3", "4"} and card["train"]["track"]["4"] == card["train"]["total"]


def test_run_without_data_dir_fetches_verifies_and_builds(server, tmp_path):
    "`kddcup24 run --track 5 --stages data` with no data folder fetches from the mirror setting, verifies, builds; a corrupt file stops it."
    env = {k: v for k, v in os.environ.items() if k != "KDDCUP24_DATA"}
    env.update(KDDCUP24_DATA_URL=server, KDDCUP24_CACHE=str(tmp_path/"cache"), KDDCUP24_RUNS=str(tmp_path/"runs"), OMP_NUM_THREADS="1")
    kd = str(Path(sys.executable).parent/"kddcup24")
    Handler.corrupt.add("ec-guide/MCQ/SA.json")
    bad = subprocess.run([kd, "run", "--track", "5", "--stages", "data", "--name", "fetched"], capture_output=True, text=True, env=env, timeout=900)
    assert bad.returncode == 1 and "checksum mismatch" in bad.stderr and "ec-guide/MCQ/SA.json" in bad.stderr, bad.stderr[-2000:]
    assert "Traceback" not in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path/"cache"/"data"/"ec-guide"/"MCQ"/"SA.json").exists() and not (tmp_path/"runs"/"fetched"/"data").exists()
    assert [p.name for p in (tmp_path/"cache"/"data"/"ec-guide"/"MCQ").iterdir() if p.name.startswith("tmp")] == []
    Handler.corrupt.clear()
    ok = subprocess.run([kd, "run", "--track", "5", "--stages", "data", "--name", "fetched"], capture_output=True, text=True, env=env, timeout=900)
    assert ok.returncode == 0, ok.stderr[-3000:]
    card = json.loads((tmp_path/"runs"/"fetched"/"data"/"card.json").read_text())
    assert card["data_dir"] == str(tmp_path/"cache"/"data") and card["train"]["total"] > 35_000
    assert len((tmp_path/"cache"/"data"/"SHA256SUMS").read_text().splitlines()) == len(MANIFEST)
