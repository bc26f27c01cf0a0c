"""``copbench weights list`` / ``copbench weights fetch NAME|all``.

Every pretrained embedder names its weights with a
:class:`~copbench.embedders.weights.WeightsSpec`. ``list`` shows each one's
file, where it comes from (an HTTPS URL, or a Hugging Face repo), the sha256
it is checked against and whether it is present (and where). ``fetch``
downloads it:

- Hugging Face files and repos through ``huggingface_hub`` (``hf_hub_download``
  / ``snapshot_download`` into the Hugging Face cache, where the loader looks;
  the Hub verifies its LFS files' sha256 and resumes on its own);
- plain URLs over HTTPS only (``http://``, ``file://`` and redirects to them
  are refused; ``http://`` to this machine only with
  ``$COPBENCH_ALLOW_HTTP_LOOPBACK=1``, for tests) into the weights folder (``$COPBENCH_WEIGHTS``, default
  ``~/.cache/copbench/weights``) with a progress bar, resumable (a partial
  ``<file>.part`` is continued with an HTTP ``Range`` request whose
  ``Content-Range`` must start where the part ends), complete only when it
  holds the declared number of bytes; then the sha256 is checked against the
  spec's, else the hex prefix in the file name (``vggish-10086976.pth``). A
  complete file whose publisher gives no full checksum has its full sha256
  recorded in a ``<file>.sha256`` sidecar, against which every later load is
  verified; a truncated download is never pinned. A mismatch deletes the download and raises
  :class:`~copbench.errors.ChecksumError`.

Without network the command fails with :class:`WeightsFetchError` naming the
URL, the file and the folder to copy it into from another machine.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import BenchError, ChecksumError, WeightsMissingError
from .embedders.weights import WeightsSpec, _expected_sha256, locate, weights_dir

CHUNK = 1 << 20
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
LOOPBACK_ENV = "COPBENCH_ALLOW_HTTP_LOOPBACK"


class WeightsFetchError(BenchError):
    """Weights could not be downloaded (no network, HTTP error)."""


def specs() -> dict[str, WeightsSpec]:
    """Every weights spec copbench knows, by name (imports no model code)."""
    from .embedders.clap import HF_SPEC as CLAP_HF, SPEC as CLAP, TOKENIZER_SPEC
    from .embedders.clip_image import REPO as CLIP_REPO
    from .embedders.panns import SPEC as PANNS
    from .embedders.vggish import SPEC as VGGISH
    from .embedders.wav2clip import SPEC as WAV2CLIP
    clip = WeightsSpec(name="clip", filename="model.safetensors",
                       source=f"https://huggingface.co/{CLIP_REPO}", hf_repo=CLIP_REPO,
                       allow_patterns=("config.json", "model.safetensors",
                                       "preprocessor_config.json"))
    clap_hf = WeightsSpec(name="clap_hf", filename=CLAP_HF.filename, source=CLAP_HF.source,
                          hf_repo=CLAP_HF.hf_repo)
    return {s.name: s for s in (VGGISH, PANNS, CLAP, TOKENIZER_SPEC, WAV2CLIP, clip, clap_hf)}


@dataclass
class WeightsStatus:
    name: str
    filename: str
    source: str
    sha256: str | None
    path: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def status(spec: WeightsSpec) -> WeightsStatus:
    try:
        path = locate(spec)
        found = str(path / spec.filename if path.is_dir() else path)
    except WeightsMissingError:
        found = None
    expected = spec.sha256
    if expected is None and found and not spec.hf_repo:
        expected = _expected_sha256(Path(found), spec)[0]
    elif expected is None and not (spec.hf_repo or spec.hf_file_repo):
        expected = _expected_sha256(weights_dir() / spec.filename, spec)[0]
    source = (f"hf:{spec.hf_repo or spec.hf_file_repo}" if (spec.hf_repo or spec.hf_file_repo)
              else spec.source)
    return WeightsStatus(spec.name, spec.filename, source, expected, found)


def format_list(rows: list[WeightsStatus]) -> str:
    lines = [f"{'name':15s} {'file':45s} {'sha256':16s} present  source"]
    for r in rows:
        sha = (r.sha256[:12] + "...") if r.sha256 and len(r.sha256) > 12 else (r.sha256 or "-")
        lines.append(f"{r.name:15s} {r.filename:45s} {sha:16s} {'yes' if r.path else 'no ':3s}      "
                     f"{r.source}" + (f"\n{'':15s} -> {r.path}" if r.path else ""))
    lines.append(f"weights folder: {weights_dir()} (set $COPBENCH_WEIGHTS to change it)")
    return "\n".join(lines) + "\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL :func:`check_url` accepts (no downgrade to
    http://, no file:// or ftp://)."""

    def __init__(self, allow_http_loopback: bool):
        self.allow_http_loopback = allow_http_loopback

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow_http_loopback)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_url(url: str, allow_http_loopback: bool = False) -> None:
    """Weights come over HTTPS only; plain ``http://`` only to this machine
    (``127.0.0.1``, ``::1``, ``localhost``) when ``allow_http_loopback`` (tests,
    or ``$COPBENCH_ALLOW_HTTP_LOOPBACK=1``)."""
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in LOOPBACK_HOSTS
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and loopback and (
            allow_http_loopback or os.environ.get(LOOPBACK_ENV) == "1"):
        return
    raise WeightsFetchError(f"refusing to fetch weights from {url!r}: only https:// URLs are "
                            "fetched (plain http:// can be altered on the way; file:// and "
                            "others would copy local files)", item=url)


def _content_range(value: str | None) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", value or "")
    return tuple(int(g) for g in m.groups()) if m else None


def _open(url: str, have: int, timeout: float, allow_http_loopback: bool, dest: Path):
    """``(response or None on 416, resumed)``; raises :class:`WeightsFetchError`."""
    opener = urllib.request.build_opener(_HttpsOnlyRedirects(allow_http_loopback))
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return None, False
        raise WeightsFetchError(f"HTTP {exc.code} fetching {url}", item=dest.name) from None
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsFetchError(
            f"cannot reach {url} ({getattr(exc, 'reason', exc)}); no network? Download the file on "
            f"a machine with network and copy it to {dest}", item=dest.name) from None
    return response, response.status == 206


def download_file(url: str, dest: Path, expected_sha256: str | None = None,
                  progress: bool = True, timeout: float = 60.0,
                  allow_http_loopback: bool = False) -> str:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), check that it is
    complete and its sha256 (full digest or hex prefix), and return the digest.

    Complete means: as many bytes as the server declared (``Content-Length`` of
    a 200, the total of a 206's ``Content-Range``, which must start where the
    part ends). A stale part the server answers with 416, or a 206 for another
    range, is discarded and the file fetched whole. A download cut short keeps
    its ``.part`` (the next fetch resumes it) and raises
    :class:`WeightsFetchError` saying how many bytes arrived; a server that
    declares no length is refused unless a checksum is known. Only ``https://``
    (see :func:`check_url`)."""
    from tqdm import tqdm
    check_url(url, allow_http_loopback)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(2):
        have = part.stat().st_size if part.is_file() else 0
        response, resumed = _open(url, have, timeout, allow_http_loopback, dest)
        if response is None:  # 416 for a stale part: start again from the first byte
            part.unlink()
            continue
        with response:
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if resumed:
                span = _content_range(response.headers.get("Content-Range"))
                if span is None or span[0] != have or (length is not None
                                                       and length != span[1] - span[0] + 1):
                    part.unlink()  # another range than the one asked for: never append it
                    continue
                total = span[2]
            else:
                have, total = 0, length
            if total is None and not expected_sha256:
                raise WeightsFetchError(f"{url} declares no length and there is no checksum to "
                                        "check the file against, so a cut download could not be "
                                        "told from a whole one; fetch it with a browser and pass "
                                        f"--weights, or use a mirror that sends Content-Length",
                                        item=dest.name)
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                    disable=not progress) as bar:
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
                except (OSError, http.client.HTTPException):
                    pass  # a cut connection: the size check below says so
        size = part.stat().st_size
        if total is not None and size != total:
            raise WeightsFetchError(f"the download of {url} stopped at {size} of {total} bytes "
                                    f"(truncated); {part.name} was kept: run the fetch again to "
                                    "resume it", item=dest.name)
        break
    else:
        raise WeightsFetchError(f"{url} kept answering with another byte range than asked "
                                "for; fetch again later", item=dest.name)
    digest = _sha256(part)
    if expected_sha256 and not digest.startswith(expected_sha256.lower()):
        part.unlink()
        raise ChecksumError(f"downloaded sha256 {digest} does not match the expected "
                            f"{expected_sha256}; the download was deleted, fetch again",
                            item=dest.name)
    os.replace(part, dest)
    return digest


def fetch(spec: WeightsSpec, url: str | None = None, progress: bool = True,
          allow_http_loopback: bool = False) -> Path:
    """Download one spec's weights; returns the file (or repo folder) path.
    ``url`` replaces the spec's URL (a mirror) for a single file."""
    if (spec.hf_repo or spec.hf_file_repo) and url is None:
        return _fetch_hub(spec)
    source = url or spec.url
    if not source:
        raise WeightsFetchError("no URL to fetch from; pass --url", item=spec.name)
    dest = weights_dir() / spec.filename
    expected, how = _expected_sha256(dest, spec)
    digest = download_file(source, dest, expected, progress=progress,
                           allow_http_loopback=allow_http_loopback)
    if expected is None or len(expected) < 64:
        # the publisher gives no full checksum: record the complete file's for every later load
        dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")
    return dest


def _fetch_hub(spec: WeightsSpec) -> Path:
    cache = os.environ.get("HF_HUB_CACHE") or None
    try:
        if spec.hf_file_repo:
            from huggingface_hub import hf_hub_download
            return Path(hf_hub_download(spec.hf_file_repo, spec.filename, cache_dir=cache))
        from huggingface_hub import snapshot_download
        patterns = list(spec.allow_patterns) if spec.allow_patterns else None
        return Path(snapshot_download(spec.hf_repo, allow_patterns=patterns, cache_dir=cache))
    except Exception as exc:  # offline, gated, unknown repo: all end the same way
        repo = spec.hf_file_repo or spec.hf_repo
        raise WeightsFetchError(
            f"cannot download {spec.filename} from the Hugging Face repo {repo} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); no "
            f"network? Run `huggingface-cli download {repo}` on a machine with network and copy "
            "its cache folder here", item=spec.name) from None


def fetch_names(names: list[str], url: str | None = None, progress: bool = True,
                allow_http_loopback: bool = False) -> dict[str, Path]:
    known = specs()
    wanted = list(known) if names == ["all"] else names
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise BenchError(f"unknown weights {unknown}; choose from {', '.join(known)} or all",
                         item=",".join(unknown))
    if url and len(wanted) != 1:
        raise BenchError("--url applies to one weights name at a time", item=url)
    return {n: fetch(known[n], url=url, progress=progress,
                     allow_http_loopback=allow_http_loopback) for n in wanted}
