"""`copbench weights fetch` never pins an incomplete or foreign file (issue 19,
item 5), against a loopback server that misbehaves on purpose: a response cut
at half its declared length, a 206 for another range, a 416 for a stale part.
Oracle: the served bytes (a complete download equals them; nothing else is
renamed into place or pinned in a sidecar)."""

import http.server
import os
import threading

import pytest

from copbench.embedders.weights import WeightsSpec, clear_overrides, verify
from copbench.errors import ChecksumError
from copbench.weights_cli import WeightsFetchError, download_file, fetch

DATA = os.urandom(200_000)


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    log: list = []

    def do_GET(self):  # noqa: N802 (http.server API)
        ranged = self.headers.get("Range")
        type(self).log.append(ranged)
        start = int(ranged.split("=")[1].split("-")[0]) if ranged else 0
        if self.mode == "416" and ranged:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(DATA)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.mode == "wrong-range" and ranged:
            start = 0  # answers 206 but from the first byte
        if ranged and self.mode != "ignore-range":
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        else:
            start = 0
            self.send_response(200)
        body = DATA[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if self.mode == "truncate" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    clear_overrides()
    handler = type("H", (_Handler,), {"log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/w.bin"
    httpd.shutdown()
    httpd.server_close()


SPEC = WeightsSpec(name="w", filename="w.bin", source="https://example.invalid/w.bin")


def test_a_cut_download_is_never_pinned_and_resumes(server, tmp_path):
    handler, url = server
    handler.mode = "truncate"
    with pytest.raises(WeightsFetchError, match=f"stopped at {len(DATA) // 2} of {len(DATA)} "
                                                "bytes \\(truncated\\)"):
        fetch(SPEC, url=url, progress=False, allow_http_loopback=True)
    weights = tmp_path / "weights"
    assert not (weights / "w.bin").exists() and not (weights / "w.bin.sha256").exists()
    assert (weights / "w.bin.part").stat().st_size == len(DATA) // 2
    handler.mode = "ok"  # the next fetch resumes the part and pins the whole file
    path = fetch(SPEC, url=url, progress=False, allow_http_loopback=True)
    assert handler.log[-1] == f"bytes={len(DATA) // 2}-"
    assert path.read_bytes() == DATA
    assert verify(path, SPEC)["verified_against"] == "sidecar"


@pytest.mark.parametrize("mode", ["wrong-range", "416"])
def test_a_stale_part_or_a_wrong_range_is_fetched_again_whole(server, tmp_path, mode):
    handler, url = server
    handler.mode = mode
    part = tmp_path / "weights" / "w.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes of another release" * 10)
    path = fetch(SPEC, url=url, progress=False, allow_http_loopback=True)
    assert path.read_bytes() == DATA  # never the stale part plus an appended body
    assert handler.log[0] is not None and handler.log[-1] is None


def test_only_https_urls_are_fetched(tmp_path, server):
    _, url = server
    for bad in ("file:///etc/passwd", "http://example.com/w.bin", "ftp://example.com/w.bin", url):
        with pytest.raises(WeightsFetchError, match="only https://"):
            download_file(bad, tmp_path / "x.bin", progress=False)
    assert not (tmp_path / "x.bin").exists()


def test_a_pinned_checksum_is_compared_in_full(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(DATA)
    import hashlib
    digest = hashlib.sha256(DATA).hexdigest()
    (tmp_path / "w.bin.sha256").write_text(digest[:8] + "\n")  # a prefix is not a pin
    with pytest.raises(ChecksumError, match="full sha256"):
        verify(path, SPEC)
    (tmp_path / "w.bin.sha256").write_text(digest + "\n")
    assert verify(path, SPEC)["sha256"] == digest
