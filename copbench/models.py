"""What ``--model`` can be: a source of output audio per clip id.

- a folder of ``<clip_id>.wav`` / ``<clip_id>.flac`` files (read with soundfile,
  mixed to mono);
- a copmodel checkpoint (generated through ``copmodel.sample.load_sampler``,
  imported only when needed);
- ``reconstruct:CKPT``: the reference audio encoded and decoded by the
  checkpoint's audio representation (``Sampler.reconstruct``): the ceiling any
  model with that representation can reach; results named ``reconstruct-<ckpt>``;
- ``rollsynth:CKPT``: the checkpoint's Roll Predictor roll -> notes -> copdata's
  piano synth (``Sampler.rollsynth``), the Audeo-style chain; ``rollsynth-<ckpt>``;
- a baseline: ``oracle`` (the reference audio: the ceiling), ``resynth`` (the
  reference MIDI rendered by ``copdata.render.piano.render_notes``), ``silence``
  (zeros), ``noise`` (seeded Gaussian white noise at the reference clip's RMS,
  floor 1e-3), ``shuffle`` (the audio of another clip of the split: a seeded
  random derangement, Sattolo's algorithm, so no clip keeps its own audio).

Every source returns ``(audio, sample_rate)`` at its own rate; the runner
resamples and applies the length rule.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .errors import ModelError, ModelUnavailableError, OutputAudioError, PairingError

BASELINES = ("oracle", "resynth", "silence", "noise", "shuffle")
AUDIO_SUFFIXES = (".wav", ".flac")


def clip_seed(seed: int, clip_id: str) -> int:
    """A per-clip seed from the run seed and the clip id (stable across runs)."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(clip_id.encode())]).generate_state(1)[0])


class OutputSource:
    """Base class: ``name`` (results file name), ``kind`` and :meth:`audio`."""

    kind = ""

    def __init__(self, name: str):
        self.name = name

    def info(self) -> dict:
        return {"name": self.name, "kind": self.kind}

    def available_ids(self) -> set[str] | None:
        """Ids this source has outputs for (None: any clip of the dataset)."""
        return None

    def prepare(self, clips: list) -> None:
        """Called once with the reference clips before scoring."""

    def audio(self, clip) -> tuple[np.ndarray, int]:
        raise NotImplementedError


class FolderOutputs(OutputSource):
    kind = "folder"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        super().__init__(self.folder.resolve().name)
        self.files: dict[str, Path] = {}
        for path in sorted(self.folder.iterdir()):
            if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
                if path.stem in self.files:
                    raise PairingError(f"two output files for clip id {path.stem!r} "
                                       f"({self.files[path.stem].name}, {path.name}); keep one",
                                       item=str(self.folder))
                self.files[path.stem] = path

    def info(self) -> dict:
        return {**super().info(), "path": str(self.folder.resolve()), "num_files": len(self.files)}

    def available_ids(self) -> set[str]:
        return set(self.files)

    def audio(self, clip) -> tuple[np.ndarray, int]:
        """The output as the references were made: decoded, downmixed to mono and
        resampled to the dataset's rate in one step by libswresample
        (:func:`copdata.media.decode.read_audio`, the route every reference clip's audio
        took at build time: stereo is ``0.707 (L + R)``, not the channel mean), so
        both sides of every comparison went through the same downmix and resampler."""
        from copdata.errors import MediaError
        from copdata.media.decode import read_audio
        path = self.files[clip.id]
        try:
            data, sr = read_audio(path, sample_rate=int(clip.sample_rate))
        except MediaError as exc:
            raise OutputAudioError(f"cannot read output audio ({exc}); re-export it as "
                                   "16/24-bit WAV or FLAC", item=str(path)) from exc
        return data, int(sr)


def checkpoint_name(ckpt: Path) -> str:
    """A results name for a checkpoint: ``RUN/stage3/last.ckpt`` -> ``RUN-stage3``
    (the stem is kept when it is not the generic ``last``); safe as a file name."""
    from copdata.ids import sanitize_source_id

    path = ckpt.resolve()
    if not path.is_file():
        return sanitize_source_id(path.name)
    parts = [path.parent.parent.name, path.parent.name] + ([] if path.stem == "last" else [path.stem])
    return sanitize_source_id("-".join(p for p in parts if p))


CHECKPOINT_OUTPUTS = ("reconstruct", "rollsynth")  # prefixes: "<output>:CKPT"


class CheckpointOutputs(OutputSource):
    kind = "checkpoint"

    def __init__(self, ckpt: str | Path, seed: int, output: str = "generate",
                 track: str | None = None, device: str = "cpu"):
        self.ckpt = Path(ckpt)
        name = checkpoint_name(self.ckpt)
        super().__init__(name if output == "generate" else f"{output}-{name}")
        self.seed = int(seed)
        self.output = output
        if not self.ckpt.is_file():
            raise ModelError("checkpoint not found", item=str(ckpt))
        try:
            from copmodel.sample import load_sampler
        except ImportError as exc:
            raise ModelUnavailableError(
                f"scoring a checkpoint needs copmodel's sampling API "
                f"(copmodel.sample.load_sampler), which cannot be imported ({exc}); install "
                "copmodel or score a folder of generated <clip_id>.wav files instead",
                item=str(ckpt)) from exc
        # generated audio follows the track (default tv2a: video and caption); the
        # reconstruct / rollsynth references take no text
        self.track = (track or "tv2a") if output == "generate" else track
        self.device = device
        self.sampler = load_sampler(self.ckpt, device=device)
        if output == "rollsynth" and int(getattr(self.sampler, "stage", 0)) < 2:
            raise ModelError("rollsynth needs a trained Roll Predictor: use a stage-2 or "
                             "stage-3 checkpoint", item=str(ckpt))

    def info(self) -> dict:
        from .cache import file_sha256
        out = {**super().info(), "path": str(self.ckpt.resolve()), "output": self.output,
               "track": self.track, "device": self.device}
        if self.ckpt.is_file():
            out["sha256"] = file_sha256(self.ckpt)
        for key in ("stage", "step", "ckpt_hash"):
            value = getattr(self.sampler, key, None)
            if isinstance(value, (int, str)):
                out[f"sampler_{key}"] = value
        return out

    def audio(self, clip) -> tuple[np.ndarray, int]:
        if self.output == "generate":
            audio = self.sampler.generate(clip, seed=clip_seed(self.seed, clip.id),
                                          track=self.track)
        else:
            audio = getattr(self.sampler, self.output)(clip)
        return np.asarray(audio, dtype=np.float32).reshape(-1), int(clip.sample_rate)


class Baseline(OutputSource):
    kind = "baseline"

    def __init__(self, name: str, seed: int):
        super().__init__(name)
        self.baseline = name  # what to produce; ``name`` (the results name) may be renamed
        self.seed = int(seed)
        self._clips: dict[str, object] = {}
        self._partner: dict[str, str] = {}

    def info(self) -> dict:
        out = {**super().info(), "baseline": self.baseline, "seed": self.seed}
        if self.baseline == "resynth":
            out["renderer"] = "copdata.render.piano.render_notes"
        return out

    def prepare(self, clips: list) -> None:
        self._clips = {c.id: c for c in clips}
        if self.baseline == "shuffle":
            ids = sorted(self._clips)
            if len(ids) < 2:
                raise PairingError("the shuffle baseline needs at least two clips", item="shuffle")
            perm = sattolo(len(ids), np.random.default_rng([self.seed, zlib.crc32(b"shuffle")]))
            self._partner = {ids[i]: ids[perm[i]] for i in range(len(ids))}

    def partner(self, clip_id: str) -> str:
        return self._partner[clip_id]

    def audio(self, clip) -> tuple[np.ndarray, int]:
        sr, n = int(clip.sample_rate), int(clip.num_samples)
        if self.baseline == "oracle":
            return clip.audio(), sr
        if self.baseline == "silence":
            return np.zeros(n, np.float32), sr
        if self.baseline == "noise":
            ref = clip.audio().astype(np.float64)
            rms = max(float(np.sqrt(np.mean(ref ** 2))) if ref.size else 0.0, 1e-3)
            rng = np.random.default_rng(clip_seed(self.seed, clip.id))
            return (rng.standard_normal(n) * rms).astype(np.float32), sr
        if self.baseline == "shuffle":
            other = self._clips[self._partner[clip.id]]
            return other.audio(), int(other.sample_rate)
        if self.baseline == "resynth":
            from copdata.render.piano import render_notes
            return np.asarray(render_notes(clip.notes(), sr, float(clip.seconds)), np.float32), sr
        raise ModelError(f"unknown baseline; choose one of {BASELINES}", item=self.baseline)


def sattolo(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random cyclic permutation of ``range(n)`` (no fixed points)."""
    perm = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


BASELINE_PREFIX = "baseline:"


TRACKS = ("v2a", "tv2a")  # copmodel.sample: Sampler.generate(clip, seed=..., track=...)


def resolve_model(model: str, seed: int = 0, track: str | None = None,
                  device: str = "cpu") -> OutputSource:
    """Turn a ``--model`` argument into an output source.

    ``baseline:NAME`` is always the baseline; a bare baseline name (``oracle``)
    is the baseline unless a file or folder of that name exists here, which is
    refused as ambiguous (write ``baseline:oracle`` or ``./oracle``); anything
    else is a path.
    """
    if model.startswith(BASELINE_PREFIX):
        name = model[len(BASELINE_PREFIX):]
        if name not in BASELINES:
            raise ModelError(f"unknown baseline; choose one of {', '.join(BASELINES)}",
                             item=model)
        return Baseline(name, seed)
    if model in BASELINES:
        if Path(model).exists():
            raise ModelError(f"{model!r} is both a baseline and a path here; write "
                             f"{BASELINE_PREFIX}{model} for the baseline or ./{model} for the "
                             "path", item=model)
        return Baseline(model, seed)
    prefix, sep, rest = model.partition(":")
    if sep and prefix in CHECKPOINT_OUTPUTS:
        return CheckpointOutputs(rest, seed, output=prefix, track=track, device=device)
    path = Path(model)
    if path.is_dir() and any(p.suffix.lower() in AUDIO_SUFFIXES for p in path.iterdir()):
        return FolderOutputs(path)
    if path.exists():
        return CheckpointOutputs(path, seed, track=track, device=device)
    raise ModelError(f"--model is neither a baseline ({', '.join(BASELINES)}), a folder of "
                     "<clip_id>.wav/.flac files, a checkpoint path, nor reconstruct:CKPT / "
                     "rollsynth:CKPT", item=model)
