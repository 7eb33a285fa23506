"Fetch: download the data layout from a mirror (a loopback HTTP server over ../shared/data), resume, refuse corruption."
import hashlib, threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
import pytest
from conftest import shared
from kddcup24.data import MANIFEST, DownloadError, download, fetch_data

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

def test_broken_download_resumes(server, tmp_path):
    rel = "ec-guide/Generation/PQA.json"
    Handler.broken.add(rel)
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch_data(tmp_path, base_url=server, files=[rel], progress=False)
    part = tmp_path/(rel + ".part")
    assert not (tmp_path/rel).exists() and 0 < part.stat().st_size < MANIFEST[rel][0]
    fetch_data(tmp_path, base_url=server, files=[rel], progress=False)
    assert len(Handler.seen_ranges) == 1 and 0 < Handler.seen_ranges[0][1] < MANIFEST[rel][0]  # resumed, not restarted
    assert hashlib.sha256((tmp_path/rel).read_bytes()).hexdigest() == MANIFEST[rel][1] and not part.exists()

def test_corrupt_download_refused(server, tmp_path):
    rel = "shopbench/development.json"
    Handler.corrupt.add(rel)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_data(tmp_path, base_url=server, files=[rel], progress=False)
    assert not (tmp_path/rel).exists() and not (tmp_path/(rel + ".part")).exists()
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
