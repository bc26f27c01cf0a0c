"""``copbench listen``: build a static, blind listening study (ACR, ITU-T P.800 style).

STUDY_DIR after :func:`build_study`:

- ``index.html``: the whole study page (inline CSS/JS, the public study spec
  inline as JSON); opens from ``file://`` or any static host, no server.
- ``media/<stimulus id>.mp4``: the clip's video with one system's audio (AAC),
  level-aligned, no metadata tags; stimulus ids are random, so neither file
  names, URLs nor the order of the trial list (sorted by id) tell the system.
- ``study-key.json``: stimulus id -> system, role and clip, the public spec and
  its hash, the build settings. The page never loads it; it is the only file of
  the study that names a system. Keep it out of a public copy of the study.

Systems: every model, the reference audio as hidden reference (named
``oracle``, copbench's baseline for the reference audio), and a low anchor
(``--anchor``, default the ``noise`` baseline; ``none`` for no anchor). Every
rater rates every (system, clip) stimulus of the test; a training section
(the reference, the anchor and one model on a clip outside the test when the
split has one) comes first and is not scored.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm import tqdm

from copdata import open_dataset
from copdata.errors import CopDataError

from ..errors import BenchError
from ..models import BASELINES, Baseline, OutputSource
from ..outputs import clip_output, sources_from_argument
from ..results import now_iso
from .media import TARGET_DBFS, media_tags, normalize_level, write_stimulus

KEY_FILE = "study-key.json"
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

    @property
    def study_id(self) -> str:
        return self.spec["study_id"]

    def test_stimuli(self) -> list[str]:
        return [t["stimulus"] for t in self.spec["trials"]]

    def to_dict(self) -> dict:
        return {"format": "copbench-study-key", "version": 1, "study_hash": self.study_hash,
                "spec": self.spec, "stimuli": {k: s.to_dict() for k, s in sorted(self.stimuli.items())},
                "settings": self.settings, "created": self.created}

    @classmethod
    def from_dict(cls, data: dict) -> "StudyKey":
        return cls(spec=data["spec"], study_hash=data["study_hash"],
                   stimuli={k: Stimulus.from_dict(k, v) for k, v in data["stimuli"].items()},
                   settings=data.get("settings", {}), created=data.get("created", ""))


def spec_hash(spec: dict) -> str:
    """sha256 of the canonical JSON of the public spec (what the page shows)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_key(study_dir: str | Path) -> StudyKey:
    """Read and verify ``STUDY_DIR/study-key.json`` (its hash must match its spec)."""
    path = Path(study_dir) / KEY_FILE
    if not path.is_file():
        raise StudyError(f"no {KEY_FILE}: not a study folder written by `copbench listen`",
                         item=str(study_dir))
    try:
        key = StudyKey.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise StudyError(f"unreadable study key ({exc})", item=str(path)) from exc
    if spec_hash(key.spec) != key.study_hash:
        raise StudyError("the study key's spec does not match its hash (edited by hand?)",
                         item=str(path))
    return key


def _models(sources: list[tuple[str, OutputSource]],
            anchor: str | None) -> list[tuple[str, OutputSource]]:
    """The models to test: each name once, without the reference and anchor
    baselines (in every study already, whatever their results are named)."""
    fixed = {REFERENCE} | ({anchor} if anchor else set())
    seen, out = set(fixed), []
    for name, source in sources:
        if name in seen or (isinstance(source, Baseline) and source.baseline in fixed):
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
    payload = json.dumps(public, sort_keys=True, ensure_ascii=False).replace("</", "<\\/")
    return template.replace("/*STUDY_JSON*/", payload)


def build_study(data: str | Path, models: str, out: str | Path, split: str = "test",
                clips: int = 10, raters_seed: int = 0, seed: int = 0, anchor: str = "noise",
                post_url: str | None = None, study_id: str | None = None,
                training: bool = True, target_dbfs: float = TARGET_DBFS,
                progress: bool = True) -> StudyKey:
    """Build a study of ``clips`` clips of ``split`` for ``models`` (a results
    folder or comma-separated ``--model`` values) into ``out``."""
    out = Path(out)
    if (out / KEY_FILE).exists() or (out / "index.html").exists():
        raise StudyError("the folder already holds a study; choose a new --out", item=str(out))
    anchor = None if anchor in (None, "", "none") else anchor
    if anchor is not None and anchor not in BASELINES:
        raise StudyError(f"--anchor must be a baseline ({', '.join(BASELINES)}) or none",
                         item=anchor)
    if clips < 1:
        raise StudyError("--clips must be at least 1", item=str(clips))
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
    out.mkdir(parents=True, exist_ok=True)
    media_dir = out / "media"
    media_dir.mkdir(exist_ok=True)
    stimuli: dict[str, Stimulus] = {}
    digests: dict[str, str] = {}
    names = sorted({n for n, _, _ in systems} | {s.name for _, s, _ in systems})
    for (name, source, role), clip, is_training in tqdm(jobs, desc="copbench listen",
                                                        unit="stimulus", disable=not progress):
        stim_id = "s" + secrets.token_hex(6)
        try:
            audio = clip.audio() if role == "reference" else clip_output(source, clip)
        except CopDataError as exc:
            raise StudyError(f"model {name!r} failed on clip {clip.id}: {exc}; a study "
                             "needs every system on every clip", item=clip.id) from exc
        path = write_stimulus(clip.dir / "video.mp4", normalize_level(audio, target_dbfs),
                              clip.sample_rate, media_dir / f"{stim_id}.mp4")
        leaked = _leaks(json.dumps(media_tags(path)), names)
        if leaked:
            raise StudyError(f"media tags name a system ({leaked})", item=str(path))
        digests[stim_id] = hashlib.sha256(path.read_bytes()).hexdigest()
        stimuli[stim_id] = Stimulus(stim_id, name, role, clip.id, is_training)

    def entry(stim_id: str) -> dict:
        return {"stimulus": stim_id, "media": f"media/{stim_id}.mp4", "sha256": digests[stim_id]}
    train_ids = [s for s in stimuli if stimuli[s].training]
    spec = {
        "format": "copbench-study", "version": 1,
        "study_id": study_id or f"study-{secrets.token_hex(4)}",
        "order_seed": int(raters_seed),
        "questions": QUESTIONS, "scale": {str(k): v for k, v in SCALE.items()},
        "training": [entry(s) for s in train_ids],
        "trials": [entry(s) for s in sorted(s for s in stimuli if not stimuli[s].training)],
        "post_url": post_url or None,
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
                "systems": {n: {"role": role, "info": s.info()} for n, s, role in systems},
                "dataset_fingerprint": ds.fingerprint()}
    key = StudyKey(spec, study_hash, stimuli, settings, now_iso())
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / KEY_FILE).write_text(json.dumps(key.to_dict(), sort_keys=True, indent=1) + "\n",
                                encoding="utf-8")
    return key
