"""Public sampling API (used by ``copmodel sample``, ``copbench run --model`` and the demo).

``load_sampler(ckpt_path, device="cpu") -> Sampler``;
``Sampler.generate(clip, seed, steps=None, guidance=None, track="tv2a")`` returns
float32 mono audio at ``clip.sample_rate`` with exactly ``clip.num_samples``
samples; ``guidance`` is the classifier-free guidance weight (default the
checkpoint's ``sample.guidance_weight``). What the model is given is the
``track`` (:data:`TRACKS`): ``v2a`` the video only, with one fixed neutral prompt
(:data:`NEUTRAL_PROMPT`) in place of every clip's caption; ``tv2a`` the video and
the clip's caption (which states facts of the clip: key, tempo, texture, note
counts). Everything runs on the sampler's ``device`` (Griffin-Lim included). Two more
outputs of a checkpoint serve as baselines:
``Sampler.reconstruct(clip)`` (the clip's own audio encoded and decoded by the
checkpoint's audio representation: the ceiling of what the generator can
produce) and ``Sampler.rollsynth(clip)`` (the Roll Predictor's roll -> notes ->
copdata's piano synth, the Audeo-style chain without the generative model).
``sample_split(sampler, dataset, split, out, ...)`` writes ``<clip_id>.wav`` for a
split. ``clip`` is a
``copdata`` Clip (``frames()``, ``caption``, ``fps``, ``seconds``...). From stage 2 on
the roll stream is driven by the Roll Predictor's roll predicted from the clip's
frames, never by the clip's ground-truth roll. Weights are the checkpoint's EMA.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .audio import resample
from .ckpt import file_hash, load_checkpoint
from .data import condition_arrays, seq_lens
from .model import CoPModel
from .presets import Config

log = logging.getLogger(__name__)

TRACKS = ("v2a", "tv2a")
# the v2a track's caption for every clip: says what any clip of the dataset is, nothing
# about this one
NEUTRAL_PROMPT = "a piano performance"


def track_caption(clip, track: str) -> str:
    """The caption the model is given on ``track`` (see the module docstring)."""
    from .errors import ConfigError

    if track not in TRACKS:
        raise ConfigError(f"unknown track; choose one of {', '.join(TRACKS)}", item=str(track))
    return NEUTRAL_PROMPT if track == "v2a" else clip.caption


class Sampler:
    def __init__(self, model: CoPModel, stage: int, ckpt_path: str, ckpt_hash: str,
                 step: int, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.cfg: Config = model.cfg
        self.stage, self.ckpt_path, self.ckpt_hash, self.step = stage, ckpt_path, ckpt_hash, step
        self.device = torch.device(device)

    def info(self) -> dict:
        """Provenance of generated audio."""
        return {"ckpt": self.ckpt_path, "ckpt_sha256": self.ckpt_hash, "stage": self.stage,
                "train_step": self.step, "config": self.cfg.to_dict(),
                "steps": self.cfg.sample.steps,
                "guidance_weight": self.cfg.sample.guidance_weight,
                "guidance_convention": self.cfg.sample.guidance_convention,
                "sway": self.cfg.sample.sway, "device": str(self.device),
                "roll": (("predicted (thresholded)" if self.cfg.train.roll_condition == "true"
                          else "predicted (probabilities)") if self.stage >= 2 else "none")}

    def _batch(self, clip, lens, track: str = "tv2a") -> dict:
        arrays = condition_arrays(clip, self.cfg, lens, roll=np.zeros((lens.video_frames, 88)),
                                  caption=track_caption(clip, track))
        batch = {k: torch.as_tensor(v)[None].to(self.device) for k, v in arrays.items()}
        if self.stage >= 2:
            batch["roll"] = self.model.sampling_roll(batch["frames"])
        else:
            del batch["roll"]
        return batch

    @torch.no_grad()
    def conditions(self, clip, track: str = "tv2a") -> dict:
        """The condition arrays one generation uses (batch of 1): frames, text (the
        ``track``'s caption) and, from stage 2, the roll in the form the model was
        trained on."""
        return self._batch(clip, seq_lens(self.cfg, clip.seconds, clip.fps), track)

    @torch.no_grad()
    def predict_roll(self, clip) -> np.ndarray:
        """The Roll Predictor's binary roll ``uint8 (T, 88)`` for a clip (stage >= 2)."""
        lens = seq_lens(self.cfg, clip.seconds, clip.fps)
        arrays = condition_arrays(clip, self.cfg, lens, roll=np.zeros((lens.video_frames, 88)))
        frames = torch.as_tensor(arrays["frames"])[None].to(self.device)
        pred = self.model.roll_predictor.predict(frames, self.cfg.sample.roll_threshold)
        return pred[0].cpu().numpy().astype(np.uint8)

    @torch.no_grad()
    def generate_features(self, clip, seed: int, steps: int | None = None,
                          guidance: float | None = None, track: str = "tv2a",
                          batch: dict | None = None) -> np.ndarray:
        """Raw audio features ``(C, M)`` for a clip (deterministic under ``seed``);
        ``batch``: :meth:`conditions` of the clip on this ``track``, when already computed."""
        lens = seq_lens(self.cfg, clip.seconds, clip.fps)
        batch = self._batch(clip, lens, track) if batch is None else batch
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(1, self.model.audio.channels, lens.feat_frames, generator=g)
        feats = self.model.generate(batch, noise.to(self.device), self.stage,
                                    steps or self.cfg.sample.steps,
                                    self.cfg.sample.guidance_weight if guidance is None
                                    else guidance)
        return feats[0].float().cpu().numpy()

    def vocode(self, features: np.ndarray, clip) -> np.ndarray:
        """Features -> float32 audio at ``clip.sample_rate``, exactly ``clip.num_samples``."""
        lens = seq_lens(self.cfg, clip.seconds, clip.fps)
        audio = self.model.audio.decode(features, lens.audio_samples)
        audio = resample(audio, self.model.audio.sample_rate, int(clip.sample_rate),
                         int(clip.num_samples))
        return _limit(audio)

    def generate(self, clip, seed: int, steps: int | None = None,
                 guidance: float | None = None, track: str = "tv2a") -> np.ndarray:
        """Audio for ``clip`` (see the module docstring)."""
        return self.vocode(self.generate_features(clip, seed, steps, guidance, track), clip)

    def reconstruct(self, clip) -> np.ndarray:
        """The clip's reference audio through the checkpoint's audio representation
        (encode, decode): float32 at ``clip.sample_rate``, ``clip.num_samples`` samples."""
        from .audio import round_trip

        audio = round_trip(clip.audio(), int(clip.sample_rate), self.model.audio,
                           int(clip.num_samples))
        return _limit(audio)

    def predict_notes(self, clip, velocity: int = 80) -> list:
        """The Roll Predictor's roll as ``copdata`` notes (stage >= 2)."""
        from .errors import CheckpointError
        from .roll_predictor import roll_to_notes

        if self.stage < 2:
            raise CheckpointError("a stage-1 checkpoint has no trained Roll Predictor; "
                                  "use a stage-2 or stage-3 checkpoint", item=self.ckpt_path)
        return roll_to_notes(self.predict_roll(clip), float(clip.fps), velocity=velocity)

    def rollsynth(self, clip) -> np.ndarray:
        """Predicted roll -> notes -> ``copdata.render.piano.render_notes``."""
        from copdata.render.piano import render_notes

        audio = render_notes(self.predict_notes(clip), int(clip.sample_rate), float(clip.seconds))
        return resample(np.asarray(audio, np.float32), int(clip.sample_rate),
                        int(clip.sample_rate), int(clip.num_samples))


def _limit(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:  # keep the waveform in [-1, 1] for 16-bit writers
        audio = audio * (0.99 / peak)
    return audio.astype(np.float32)


OUTPUTS = ("generate", "reconstruct", "rollsynth")


def sample_split(sampler: Sampler, data, split: str, out: str | Path, *, seed: int = 0,
                 steps: int | None = None, guidance: float | None = None,
                 output: str = "generate", track: str = "tv2a", limit: int | None = None,
                 progress: bool = True) -> dict:
    """Write ``OUT/<clip_id>.wav`` for every clip of ``split`` and ``OUT/sampler.json``
    (provenance); returns that provenance. ``data``: a dataset folder or an opened
    ``copdata`` dataset; ``output``: ``generate`` (seeded by ``seed``, on ``track``),
    ``reconstruct`` or ``rollsynth``."""
    import json

    import copdata
    from copdata.media.encode import write_audio
    from tqdm import tqdm

    from .errors import ConfigError

    if output not in OUTPUTS:
        raise ConfigError(f"unknown output; choose one of {OUTPUTS}", item=output)
    if track not in TRACKS:
        raise ConfigError(f"unknown track; choose one of {', '.join(TRACKS)}", item=str(track))
    ds = copdata.open_dataset(data) if isinstance(data, (str, Path)) else data
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clips = list(ds.clips(split))[:limit]
    for clip in tqdm(clips, desc=output, unit="clip", disable=not progress):
        if output == "generate":
            audio = sampler.generate(clip, seed=seed, steps=steps, guidance=guidance, track=track)
        else:
            audio = getattr(sampler, output)(clip)
        write_audio(out / f"{clip.id}.wav", audio, clip.sample_rate)
    info = {**sampler.info(), "output": output, "seed": seed, "split": split,
            "clips": len(clips), "steps": steps or sampler.cfg.sample.steps,
            "guidance_weight": (sampler.cfg.sample.guidance_weight if guidance is None
                                else guidance),
            "track": track if output == "generate" else None}
    (out / "sampler.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return info


def load_sampler(ckpt_path: str | Path, device: str = "cpu") -> Sampler:
    """Load a stage checkpoint (EMA weights) for sampling."""
    ckpt = load_checkpoint(ckpt_path)
    model = CoPModel(Config.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["ema"])
    return Sampler(model, int(ckpt["stage"]), str(ckpt_path), file_hash(ckpt_path),
                   int(ckpt["step"]), device)
