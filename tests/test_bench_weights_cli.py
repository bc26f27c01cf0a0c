"""copbench weights list/fetch against a loopback HTTP server serving random weights."""

import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from copbench.cli import main
from copbench.embedders import build_embedder
from copbench.embedders.weights import clear_overrides
from copbench.errors import ChecksumError
from copbench.weights_cli import WeightsFetchError, download_file, fetch_names


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COPBENCH_ALLOW_HTTP_LOOPBACK", "1")  # the loopback server is http://
    clear_overrides()
    yield
    clear_overrides()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``root`` with HTTP Range support; logs each request."""

    root: Path = Path(".")
    log: list = []

    def do_GET(self):
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        ranged = self.headers.get("Range")
        if ranged:
            start = int(ranged.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])
        self.log.append((self.path, ranged))

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_RangeHandler,), {"root": root, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", handler.log
    httpd.shutdown()
    httpd.server_close()


def _random_wav2clip(path):
    from copbench.embedders.wav2clip import build_wav2clip
    torch.manual_seed(0)
    state = {("audio_encoder." if k.startswith("encoder.") else "audio_transform.") + k.split(".", 1)[1]: v
             for k, v in build_wav2clip().state_dict().items()}
    torch.save(state, path)
    return path


def test_fetch_list_and_load_through_the_weights_folder(server, tmp_path, capsys):
    root, base, log = server
    served = _random_wav2clip(root / "Wav2CLIP.pt")
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Wav2CLIP.pt" in listing and "vggish-10086976.pth" in listing and "hf:lukewys/laion_clap" in listing
    assert main(["weights", "fetch", "wav2clip", "--url", f"{base}/Wav2CLIP.pt", "--no-progress"]) == 0
    dest = tmp_path / "weights" / "Wav2CLIP.pt"
    assert dest.read_bytes() == served.read_bytes()
    assert (tmp_path / "weights" / "Wav2CLIP.pt.sha256").is_file()  # recorded on first fetch
    emb = build_embedder("wav2clip").load()
    assert emb.weights_info["verified_against"] == "sidecar"
    assert emb.embed(np.zeros(16000, np.float32), 16000).shape == (1, 512)
    assert main(["weights", "list"]) == 0
    assert str(dest) in capsys.readouterr().out


def test_resume_from_a_partial_download(server, tmp_path):
    root, base, log = server
    served = _random_wav2clip(root / "Wav2CLIP.pt")
    dest = tmp_path / "weights" / "Wav2CLIP.pt"
    dest.parent.mkdir(parents=True)
    data = served.read_bytes()
    dest.with_name("Wav2CLIP.pt.part").write_bytes(data[:len(data) // 3])
    fetch_names(["wav2clip"], url=f"{base}/Wav2CLIP.pt", progress=False)
    assert log[-1][1] == f"bytes={len(data) // 3}-"  # only the rest was requested
    assert dest.read_bytes() == data and not dest.with_name("Wav2CLIP.pt.part").exists()


def test_checksum_mismatch_deletes_the_download(server, tmp_path):
    root, base, _ = server
    torch.save({"w": torch.randn(4)}, root / "vggish-10086976.pth")  # not the real release
    with pytest.raises(ChecksumError, match="does not match"):
        fetch_names(["vggish"], url=f"{base}/vggish-10086976.pth", progress=False)
    weights = tmp_path / "weights"
    assert not (weights / "vggish-10086976.pth").exists()
    assert not (weights / "vggish-10086976.pth.part").exists()


def test_offline_errors_are_clear(tmp_path, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(WeightsFetchError, match="no network.*copy it to"):
        download_file(f"http://127.0.0.1:{port}/x.pt", tmp_path / "x.pt", progress=False)
    with pytest.raises(WeightsFetchError, match="lukewys/laion_clap"):
        fetch_names(["clap"], progress=False)  # HF_HUB_OFFLINE=1: the Hub is unreachable
    assert main(["weights", "fetch", "nothing"]) == 2
    assert "unknown weights" in capsys.readouterr().err
