"""``copbench listen``: build a static, blind listening study (ACR, ITU-T P.800 style).

STUDY_DIR after :func:`build_study` (the folder you serve):

- ``index.html``: the whole study page (inline CSS/JS, the public study spec
  inline as JSON); opens from ``file://`` or any static host, no server.
- ``media/<stimulus id>.mp4``: the clip's video with one system's audio (AAC),
  level-aligned, no metadata tags.

Nothing in the served folder identifies a system: stimulus ids are random
(the trial list is sorted by id); the spec lists no content hashes; every
stimulus's audio carries a per-study secret dither (1 LSB TPDF at 16 bits,
inaudible), so nobody can rebuild the hidden reference or the anchor from the
dataset and find it by its bytes; the media are written in a random order
(inodes), all get the same mtime, and each file is padded with an MP4 ``free``
box to one common size.

The key (stimulus id -> system, role and clip, the public spec and its hash,
the secret, the build settings) is written *outside* the served folder, by
default beside it as ``<STUDY_DIR>.study-key.json`` (``--key`` to choose; a
path inside the study folder is refused). The public spec carries
``key_hash``, a keyed sha256 of the stimulus table, so a key whose labels were
swapped or edited no longer matches the page and is refused.

Systems: every model, the reference audio as hidden reference (named
``oracle``, copbench's baseline for the reference audio), and a low anchor
(``--anchor``, default the ``noise`` baseline; ``none`` for no anchor). A
model whose name is the anchor's or the reference's but is not that baseline
(a folder ``./noise``) is refused. Every rater rates every (system, clip)
stimulus of the test; a training section (the reference, the anchor and one
model on a clip outside the test when the split has one) comes first and is
not scored.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import random
import re
import secrets
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from copdata import open_dataset
from copdata.errors import CopDataError
from copdata.export.publish import flac_samples, publishable_views

from ..errors import BenchError
from ..models import BASELINES, Baseline, OutputSource
from ..outputs import clip_output, sources_from_argument
from ..results import now_iso

from .media import TARGET_DBFS, media_tags, normalize_level, write_stimulus

log = logging.getLogger(__name__)
KEY_FILE = "study-key.json"  # the old place, inside the study folder: read, never written
KEY_SUFFIX = ".study-key.json"
STUDY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_ORDER_SEED = 2 ** 32  # the page adds it to a string: any int below 2^53 is exact
PAD_BLOCK = 4096
REFERENCE = "oracle"
QUESTIONS = [
    {"id": "quality", "text": "Sound quality"},
    {"id": "match", "text": "How well does the sound match the keys played?"},
]
SCALE = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}


class StudyError(BenchError):
    """A listening study cannot be built or read."""


@dataclass
class Stimulus:
    id: str
    system: str
    role: str  # "model" | "reference" | "anchor"
    clip: str
    training: bool = False

    def to_dict(self) -> dict:
        return {"system": self.system, "role": self.role, "clip": self.clip,
                "training": self.training}

    @classmethod
    def from_dict(cls, stimulus_id: str, row: dict) -> "Stimulus":
        return cls(stimulus_id, str(row["system"]), str(row["role"]), str(row["clip"]),
                   bool(row.get("training", False)))


@dataclass
class StudyKey:
    """What ``study-key.json`` holds: the public spec, its hash and the key."""

    spec: dict
    study_hash: str
    stimuli: dict[str, Stimulus]
    settings: dict = field(default_factory=dict)
    created: str = ""
    secret: str = ""  # hex; keys the stimulus table's hash and the stimuli's dither

    @property
    def study_id(self) -> str:
        return self.spec["study_id"]

    def test_stimuli(self) -> list[str]:
        return [t["stimulus"] for t in self.spec["trials"]]

    def to_dict(self) -> dict:
        return {"format": "copbench-study-key", "version": 2, "study_hash": self.study_hash,
                "spec": self.spec, "stimuli": {k: s.to_dict() for k, s in sorted(self.stimuli.items())},
                "settings": self.settings, "created": self.created, "secret": self.secret}

    @classmethod
    def from_dict(cls, data: dict) -> "StudyKey":
        return cls(spec=data["spec"], study_hash=data["study_hash"],
                   stimuli={k: Stimulus.from_dict(k, v) for k, v in data["stimuli"].items()},
                   settings=data.get("settings", {}), created=data.get("created", ""),
                   secret=str(data.get("secret", "")))


def spec_hash(spec: dict) -> str:
    """sha256 of the canonical JSON of the public spec (what the page shows)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_hash(stimuli: dict[str, Stimulus], secret: str) -> str:
    """HMAC-sha256 (keyed by the study's secret) of the canonical stimulus table:
    published in the spec, it binds the key to the page without revealing it."""
    table = json.dumps({k: s.to_dict() for k, s in sorted(stimuli.items())}, sort_keys=True,
                       separators=(",", ":"))
    return hmac.new(bytes.fromhex(secret), table.encode("utf-8"), hashlib.sha256).hexdigest()


def default_key_path(study_dir: str | Path) -> Path:
    """``<STUDY_DIR>.study-key.json`` beside the study folder (not inside it)."""
    study_dir = Path(study_dir).resolve()
    return study_dir.parent / f"{study_dir.name}{KEY_SUFFIX}"


def _page_hash(study_dir: Path) -> str | None:
    page = study_dir / "index.html"
    if not page.is_file():
        return None
    m = re.search(r'<script type="application/json" id="study">(.*?)</script>',
                  page.read_text(encoding="utf-8", errors="replace"), re.S)
    try:
        return str(json.loads(m.group(1))["study_hash"]) if m else None
    except (ValueError, KeyError, TypeError):
        return None


def read_key(study_dir: str | Path, key_path: str | Path | None = None) -> StudyKey:
    """Read and verify the study key (``key_path``, default
    :func:`default_key_path`; a key inside the study folder, where older
    copbench wrote it, is read with a warning). Its spec must match its hash,
    its stimulus table the spec's ``key_hash``, and the study page in
    ``study_dir`` (when there) the same study hash."""
    study_dir = Path(study_dir)
    if key_path is None:
        key_path = default_key_path(study_dir)
        legacy = study_dir / KEY_FILE
        if not Path(key_path).is_file() and legacy.is_file():
            log.warning("%s is inside the served study folder: anyone who can open the page "
                        "can read it; move it to %s", legacy, key_path)
            key_path = legacy
    path = Path(key_path)
    if not path.is_file():
        raise StudyError(f"no study key at {path}: not a study written by `copbench listen`, or "
                         "the key was moved (pass --key)", item=str(study_dir))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        key = StudyKey.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StudyError(f"unreadable study key ({exc})", item=str(path)) from exc
    if spec_hash(key.spec) != key.study_hash:
        raise StudyError("the study key's spec does not match its hash (edited by hand?)",
                         item=str(path))
    if not isinstance(key.spec.get("key_hash"), str) or not re.fullmatch(r"[0-9a-f]+", key.secret):
        raise StudyError("the study key has no key hash or secret (written by an older "
                         "copbench?); its labels cannot be checked", item=str(path))
    if not hmac.compare_digest(key_hash(key.stimuli, key.secret), key.spec["key_hash"]):
        raise StudyError("the study key's stimulus table does not match the study's key hash: "
                         "labels were edited or swapped; use the key `copbench listen` wrote",
                         item=str(path))
    page = _page_hash(study_dir)
    if page is not None and page != key.study_hash:
        raise StudyError(f"the study page in {study_dir} is another study (hash {page[:12]}, key "
                         f"{key.study_hash[:12]})", item=str(path))
    return key


def _models(sources: list[tuple[str, OutputSource]],
            anchor: str | None) -> list[tuple[str, OutputSource]]:
    """The models to test: each name once, without the reference and anchor
    baselines (in every study already, whatever their results are named). A
    source named like the reference or the anchor that is not that baseline
    (a folder ``./noise``) is refused: it would be replaced by the baseline."""
    fixed = {REFERENCE} | ({anchor} if anchor else set())
    seen, out = set(fixed), []
    for name, source in sources:
        if isinstance(source, Baseline) and source.baseline in fixed:
            continue
        if name in fixed:
            raise StudyError(f"model {name!r} has the name of the study's "
                             f"{'hidden reference' if name == REFERENCE else 'anchor'} baseline "
                             "but is not that baseline; rename it (results --name, or the "
                             "folder) or choose another --anchor", item=name)
        if name in seen:
            continue
        seen.add(name)
        out.append((name, source))
    return out


def _leaks(text: str, names: list[str]) -> list[str]:
    return [n for n in names if len(n) >= 3
            and re.search(r"(?<![A-Za-z0-9])" + re.escape(n) + r"(?![A-Za-z0-9])", text, re.I)]


def render_page(spec: dict, study_hash: str) -> str:
    template = resources.files("copbench.listen").joinpath("template.html").read_text("utf-8")
    public = dict(spec, study_hash=study_hash)
    # no "<" at all inside the script element: "</script>" and "<!--" cannot end or bend it
    payload = (json.dumps(public, sort_keys=True, ensure_ascii=False)
               .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return template.replace("/*STUDY_JSON*/", payload)


def _pad_to(path: Path, size: int) -> None:
    """Append one MP4 ``free`` box so that ``path`` is ``size`` bytes (players skip it)."""
    pad = size - path.stat().st_size
    if pad == 0:
        return
    if pad < 8:
        raise ValueError(f"cannot pad {path.name} by {pad} bytes")
    with open(path, "ab") as fh:
        fh.write(struct.pack(">I", pad) + b"free" + bytes(pad - 8))


def _dither(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1 LSB (16-bit) TPDF dither: inaudible, but the encoded bytes depend on it."""
    lsb = 1.0 / 32768
    noise = (rng.random(audio.shape) - rng.random(audio.shape)) * lsb
    return (audio + noise).astype(np.float32)


def _check_options(out: Path, key_path: Path, raters_seed, study_id, clips) -> None:
    if isinstance(raters_seed, bool) or not isinstance(raters_seed, int) \
            or not 0 <= raters_seed < MAX_ORDER_SEED:
        raise StudyError(f"--raters-seed must be an integer in [0, {MAX_ORDER_SEED})",
                         item=str(raters_seed))
    if study_id is not None and not STUDY_ID_RE.match(study_id):
        raise StudyError("--study-id must be 1-64 letters, digits, '_', '.' or '-' (it is shown "
                         "on the page and names the ratings files)", item=repr(study_id)[:80])
    if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
        raise StudyError("--clips must be at least 1", item=str(clips))
    served = out.resolve()
    if key_path.resolve() == served or served in key_path.resolve().parents:
        raise StudyError("the key must be kept outside the served study folder (anyone who can "
                         "open the page could read it); choose --key elsewhere", item=str(key_path))
    if key_path.exists():
        raise StudyError("a study key already exists there; choose a new --out or --key",
                         item=str(key_path))


def build_study(data: str | Path, models: str, out: str | Path, split: str = "test",
                clips: int = 10, raters_seed: int = 0, seed: int = 0, anchor: str = "noise",
                post_url: str | None = None, study_id: str | None = None,
                training: bool = True, target_dbfs: float = TARGET_DBFS,
                progress: bool = True, key_path: str | Path | None = None) -> StudyKey:
    """Build a study of ``clips`` clips of ``split`` for ``models`` (a results
    folder or comma-separated ``--model`` values) into ``out``; the key goes to
    ``key_path`` (default :func:`default_key_path`, outside ``out``)."""
    out = Path(out)
    key_path = Path(key_path) if key_path is not None else default_key_path(out)
    if (out / KEY_FILE).exists() or (out / "index.html").exists():
        raise StudyError("the folder already holds a study; choose a new --out", item=str(out))
    _check_options(out, key_path, raters_seed, study_id, clips)
    anchor = None if anchor in (None, "", "none") else anchor
    if anchor is not None and anchor not in BASELINES:
        raise StudyError(f"--anchor must be a baseline ({', '.join(BASELINES)}) or none",
                         item=anchor)
    if post_url and not re.match(r"https?://[^\s\"'<>]+$", post_url):
        raise StudyError("--post-url must be an http:// or https:// URL", item=post_url)
    ds = open_dataset(data)
    all_clips = sorted(ds.clips(split), key=lambda c: c.id)
    if not all_clips:
        raise StudyError(f"the dataset has no clips in split {split!r}", item=str(data))
    models_list = _models(sources_from_argument(models, seed), anchor)
    if not models_list:
        raise StudyError("no model to test (only the reference/anchor were given)", item=models)
    # (system name, source, role)
    systems: list[tuple[str, OutputSource, str]] = [(REFERENCE, Baseline(REFERENCE, seed),
                                                     "reference")]
    systems += [(name, source, "model") for name, source in models_list]
    if anchor:
        systems.append((anchor, Baseline(anchor, seed), "anchor"))
    for _, source, _ in systems:
        source.prepare(all_clips)
    eligible = [c for c in all_clips
                if all(s.available_ids() is None or c.id in s.available_ids()
                       for _, s, _ in systems)]
    if len(eligible) < clips:
        raise StudyError(f"only {len(eligible)} clips of split {split!r} have outputs from every "
                         f"model; ask for --clips {len(eligible)} or fewer", item=str(data))
    rng = np.random.default_rng([int(seed), 0x115])
    picked = sorted(rng.choice(len(eligible), size=clips, replace=False).tolist())
    test_clips = [eligible[i] for i in picked]
    rest = [c for i, c in enumerate(eligible) if i not in set(picked)]
    training_clip = (rest[int(rng.integers(len(rest)))] if rest else test_clips[0]) if training else None

    jobs: list[tuple[tuple, object, bool]] = [
        (system, c, False) for c in test_clips for system in systems]
    if training_clip is not None:
        trainers = [systems[0], systems[-1] if anchor else systems[0],
                    systems[1 + int(rng.integers(len(models_list)))]]
        unique = list(dict.fromkeys(trainers))
        for i in rng.permutation(len(unique)).tolist():
            jobs.append((unique[i], training_clip, True))
    # only regular files inside the dataset whose hashes match clips.jsonl are published
    used = {c.id: c for c in test_clips + ([training_clip] if training_clip else [])}
    views = {cid: publishable_views(ds.root, c.row) for cid, c in used.items()}
    secret = secrets.token_bytes(32)
    dither_rng = np.random.default_rng(int.from_bytes(secret, "big"))
    random.SystemRandom().shuffle(jobs)  # write order (inodes, times) says nothing of roles
    out.mkdir(parents=True, exist_ok=True)
    media_dir = out / "media"
    media_dir.mkdir(exist_ok=True)
    stimuli: dict[str, Stimulus] = {}
    names = sorted({n for n, _, _ in systems} | {s.name for _, s, _ in systems})
    for (name, source, role), clip, is_training in tqdm(jobs, desc="copbench listen",
                                                        unit="stimulus", disable=not progress):
        stim_id = "s" + secrets.token_hex(6)
        try:
            audio = (flac_samples(views[clip.id]["audio.flac"], clip.id) if role == "reference"
                     else clip_output(source, clip))
        except CopDataError as exc:
            raise StudyError(f"model {name!r} failed on clip {clip.id}: {exc}; a study "
                             "needs every system on every clip", item=clip.id) from exc
        audio = _dither(normalize_level(audio, target_dbfs), dither_rng)
        path = write_stimulus(io.BytesIO(views[clip.id]["video.mp4"]), audio,
                              clip.sample_rate, media_dir / f"{stim_id}.mp4")
        leaked = _leaks(json.dumps(media_tags(path)), names)
        if leaked:
            raise StudyError(f"media tags name a system ({leaked})", item=str(path))
        stimuli[stim_id] = Stimulus(stim_id, name, role, clip.id, is_training)
    media = sorted(media_dir.iterdir())
    size = -(-(max(p.stat().st_size for p in media) + 8) // PAD_BLOCK) * PAD_BLOCK
    for path in media:
        _pad_to(path, size)

    def entry(stim_id: str) -> dict:
        return {"stimulus": stim_id, "media": f"media/{stim_id}.mp4"}
    train_ids = sorted(s for s in stimuli if stimuli[s].training)
    spec = {
        "format": "copbench-study", "version": 2,
        "study_id": study_id or f"study-{secrets.token_hex(4)}",
        "order_seed": int(raters_seed),
        "questions": QUESTIONS, "scale": {str(k): v for k, v in SCALE.items()},
        "training": [entry(s) for s in train_ids],
        "trials": [entry(s) for s in sorted(s for s in stimuli if not stimuli[s].training)],
        "post_url": post_url or None,
        "key_hash": key_hash(stimuli, secret.hex()),
    }
    study_hash = spec_hash(spec)
    page = render_page(spec, study_hash)
    leaked = _leaks(page, names)
    if leaked:
        raise StudyError(f"the page would name a system ({leaked}); rename the study id or "
                         "post url", item=str(out))
    settings = {"data": str(Path(data).resolve()), "split": split, "clips": clips,
                "test_clips": [c.id for c in test_clips],
                "training_clip": training_clip.id if training_clip is not None else None,
                "seed": int(seed), "raters_seed": int(raters_seed), "anchor": anchor,
                "reference": REFERENCE, "target_dbfs": target_dbfs,
                "clip_seconds": float(ds.clip_seconds), "media_bytes": size,
                "systems": {n: {"role": role, "info": s.info()} for n, s, role in systems},
                "dataset_fingerprint": ds.fingerprint()}
    key = StudyKey(spec, study_hash, stimuli, settings, now_iso(), secret.hex())
    (out / "index.html").write_text(page, encoding="utf-8")
    stamp = int(os.path.getmtime(out / "index.html")) // 60 * 60
    for path in [*media, media_dir, out / "index.html", out]:
        os.utime(path, (stamp, stamp))  # one time for every served file: no write order
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps(key.to_dict(), sort_keys=True, indent=1) + "\n",
                        encoding="utf-8")
    os.chmod(key_path, 0o600)
    return key
