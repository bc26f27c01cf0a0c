"""Size presets and the sequence-length configuration.

A :class:`Config` groups the audio representation, the network sizes, the
training and the sampling settings. Presets are named functions (``tiny`` for a
laptop CPU in minutes, ``small`` and ``base`` for GPUs). :class:`SeqLens`
derives every sequence length of a clip from its duration and frame rate and
checks that they agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from .errors import ConfigError

NUM_KEYS = 88


@dataclass(frozen=True)
class AudioConfig:
    """The audio representation at an internal sample rate.

    ``representation``: ``"stft"`` (built-in default: log-magnitude linear STFT up to
    ``fmax``, Griffin-Lim), ``"mel"`` (log-mel, NNLS + Griffin-Lim; ``n_mels``,
    ``fmin``, ``mel_inverse`` apply to it only) or ``"encodec:<local dir>"``
    (continuous EnCodec latents, transformers weights). Ceilings measured with
    ``benchmarks/bench_ceiling.py`` are in docs/copmodel.md.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop: int = 320
    n_mels: int = 80
    fmin: float = 27.5
    fmax: float = 8000.0
    griffin_lim_iters: int = 100
    griffin_lim_momentum: float = 0.99
    mel_inverse: str = "nnls"  # "nnls" or "pinv" (mel -> linear magnitude before Griffin-Lim)
    representation: str = "stft"


@dataclass(frozen=True)
class NetConfig:
    """Network sizes. ``patch`` feature frames form one audio token."""

    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    patch: int = 2
    # "velocity": the network outputs v; "data": it outputs x1 (v derived, see flow.py)
    prediction: str = "data"
    roll_depth: int = 2
    roll_kernel: int = 5
    # frames are converted to grayscale and resized to (frame_height, frame_width)
    frame_height: int = 24
    frame_width: int = 176
    video_dim: int = 64
    video_channels: int = 16
    video_encoder: str = "cnn"  # or "clip:<local dir>"
    roll_context: int = 5
    roll_channels: int = 16
    text_encoder: str = "builtin"  # or "t5:<local dir>" / "clip:<local dir>"
    text_vocab: int = 2048
    text_dim: int = 64
    text_depth: int = 1
    text_max_tokens: int = 32
    contrastive_dim: int = 64


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 8
    lr: float = 3e-3
    # stage 3 fine-tunes a trained model (contrastive + DPO): its peak LR is lr * this.
    # On one demo run stage 3 took note F1 from 0.572 (stage 2) to 0.512 at the full LR
    # 3e-3, 0.568 at 1e-3 and 0.585 at 5e-4 (docs/copmodel.md)
    stage3_lr_scale: float = 0.2
    weight_decay: float = 0.01
    warmup_steps: int = 20
    max_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    # classifier-free guidance: all conditions (video, text, roll) dropped together with
    # cond_dropout_all (trains the null branch guidance uses), plus each one on its own
    # with cond_dropout
    cond_dropout_all: float = 0.1
    cond_dropout: float = 0.05
    # the roll the audio model is conditioned on in training (sampling uses the same form):
    # "true" (binary ground truth; sampling thresholds the prediction at roll_threshold),
    # "predicted" (the Roll Predictor's soft probabilities in stages 2 and 3, as the seed),
    # "scheduled" (stage 2: per sample predicted with probability
    # min(1, step / roll_schedule_steps), 0 = always the ground truth; stage 3: always
    # predicted); predicted/scheduled sample on the probabilities
    roll_condition: str = "scheduled"
    roll_schedule_steps: int = 0
    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    roll_loss_weight: float = 1.0
    roll_frames_per_clip: int = 16  # frames per clip the Roll Predictor trains on per step
    contrastive_weight: float = 0.1
    temperature_init: float = 0.07
    dpo_beta: float = 500.0
    dpo_weight: float = 1.0
    save_every: int = 0  # 0: only at the end
    seed: int = 0
    # autocast precision: "auto" (bf16 on GPUs that support it, fp32 elsewhere), "bf16",
    # "fp16" (GPU only; gradients scaled) or "no" (fp32)
    mixed_precision: str = "auto"
    # micro-batches per optimizer step: each process's share of batch_size is split into
    # grad_accum equal parts whose gradients add up (same update, less activation memory)
    grad_accum: int = 1
    # DataLoader workers reading and collating the next steps' batches (0: in the loop)
    num_workers: int = 0
    # clips the normalisation statistics are computed from (a seeded subset; 0: all)
    stats_clips: int = 0


@dataclass(frozen=True)
class SampleConfig:
    """Euler steps, classifier-free guidance weight and convention, sway sampling
    (see flow.py)."""

    steps: int = 25
    guidance_weight: float = 2.0
    # "ours": v_u + w * (v_c - v_u), v_u with every condition null;
    # "seed": v_c + w * (v_c - v_u), v_u keeps the roll (video and text null)
    guidance_convention: str = "ours"
    sway: float = 0.0  # sway sampling coefficient s (0: uniform t; F5-TTS uses -1)
    roll_threshold: float = 0.4


# sample keys of checkpoints written before the guidance fields were renamed
LEGACY_SAMPLE_KEYS = {"cfg": "guidance_weight", "guidance": "guidance_convention"}


@dataclass(frozen=True)
class Config:
    name: str = "tiny"
    audio: AudioConfig = field(default_factory=AudioConfig)
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        def build(klass, sub):
            names = {f.name for f in fields(klass)}
            unknown = set(sub) - names
            if unknown:
                raise ConfigError(f"unknown {klass.__name__} keys {sorted(unknown)}",
                                  item=str(sub))
            return klass(**sub)
        sample = {LEGACY_SAMPLE_KEYS.get(k, k): v for k, v in d.get("sample", {}).items()}
        return cls(name=d.get("name", "custom"),
                   audio=build(AudioConfig, d.get("audio", {})),
                   net=build(NetConfig, d.get("net", {})),
                   train=build(TrainConfig, d.get("train", {})),
                   sample=build(SampleConfig, sample))

    def with_settings(self, settings: list[str]) -> "Config":
        """Apply ``group.field=value`` strings (``net.dim=256``, ``train.lr=3e-4``,
        ``audio.representation=mel``); values are parsed as the field's type."""
        changes: dict[str, dict] = {}
        for setting in settings:
            key, sep, raw = setting.partition("=")
            group, _, name = key.strip().partition(".")
            if not sep or group not in GROUPS or name not in GROUP_FIELDS[group]:
                raise ConfigError(f"--set takes group.field=value with a known field; fields: "
                                  f"{', '.join(all_keys())}", item=setting)
            changes.setdefault(group, {})[name] = parse_value(GROUP_FIELDS[group][name], raw.strip(),
                                                              setting)
        return self.override(**changes)

    def override(self, **groups: dict) -> "Config":
        """``cfg.override(net={"dim": 32}, train={"max_steps": 5})``."""
        out = self
        for group, values in groups.items():
            out = replace(out, **{group: replace(getattr(out, group), **values)})
        return out


def tiny() -> Config:
    """2 CPU cores, minutes: 16 kHz log-STFT (513 bins), hop 320 (50 Hz), 2 frames per
    token; LR 3e-3 (stage 3: 6e-4); guidance weight 3 (best demo note F1 of 1, 2, 3, 4, 5
    on the demo model)."""
    return Config(name="tiny", sample=SampleConfig(guidance_weight=3.0))


def small() -> Config:
    """One GPU, hours."""
    return Config(
        name="small",
        audio=AudioConfig(sample_rate=22050, n_fft=1024, hop=441, n_mels=100, fmax=11025.0),
        net=NetConfig(prediction="velocity", dim=384, depth=8, heads=6, mlp_ratio=4.0, patch=2, roll_depth=4,
                      frame_height=48, frame_width=352, video_dim=256, video_channels=32,
                      roll_channels=32, text_dim=256, text_depth=2, text_vocab=8192,
                      text_max_tokens=64, contrastive_dim=256),
        train=TrainConfig(batch_size=32, lr=3e-4, warmup_steps=1000, max_steps=100_000,
                          ema_decay=0.999, num_workers=4, stats_clips=2000),
        sample=SampleConfig(steps=64, guidance_weight=2.0))


def base() -> Config:
    """GPU nodes, days. Pretrained encoders (CLIP image, Flan-T5 text) found locally or in
    the HF cache (copmodel/weights.py); without them use --set net.video_encoder=cnn
    --set net.text_encoder=builtin."""
    return Config(
        name="base",
        audio=AudioConfig(sample_rate=24000, n_fft=1024, hop=480, n_mels=128, fmax=12000.0),
        net=NetConfig(prediction="velocity", dim=768, depth=12, heads=12, mlp_ratio=4.0, patch=1, roll_depth=6,
                      frame_height=64, frame_width=448, video_dim=512, video_channels=64,
                      roll_channels=64, text_dim=512, text_depth=4, text_vocab=16384,
                      text_max_tokens=77, contrastive_dim=512,
                      video_encoder="clip:openai/clip-vit-base-patch32",
                      text_encoder="t5:google/flan-t5-base"),
        train=TrainConfig(batch_size=64, lr=1e-4, warmup_steps=2000, max_steps=300_000,
                          ema_decay=0.9999, num_workers=8, stats_clips=2000),
        sample=SampleConfig(steps=64, guidance_weight=2.0))


def micro() -> Config:
    """Seconds on a CPU: for tests and smoke runs only (learns nothing useful)."""
    return Config(
        name="micro",
        audio=AudioConfig(representation="mel", n_fft=512, hop=320, n_mels=16,
                          griffin_lim_iters=4),
        net=NetConfig(dim=32, depth=2, heads=2, mlp_ratio=2.0, patch=2, roll_depth=1,
                      frame_height=8, frame_width=48, video_dim=16, video_channels=4,
                      roll_channels=4, text_dim=16, text_vocab=64, text_max_tokens=8,
                      contrastive_dim=16),
        train=TrainConfig(batch_size=4, lr=1e-3, warmup_steps=2, max_steps=4,
                          roll_frames_per_clip=4),
        sample=SampleConfig(steps=4, guidance_weight=2.0))


PRESETS = {"micro": micro, "tiny": tiny, "small": small, "base": base}
GROUPS = {"audio": AudioConfig, "net": NetConfig, "train": TrainConfig, "sample": SampleConfig}
GROUP_FIELDS = {g: {f.name: f.type for f in fields(k)} for g, k in GROUPS.items()}


def all_keys() -> list[str]:
    return [f"{g}.{name}" for g, names in GROUP_FIELDS.items() for name in names]


def parse_value(type_name, raw: str, setting: str):
    """A ``--set`` value as the field's type (``int``, ``float``, ``str``)."""
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{setting.split('=')[0]} takes a {kind}", item=setting) from None
    return raw


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset; choose one of {sorted(PRESETS)}", item=name)
    return PRESETS[name]()


def load_config(spec: str, settings: list[str] | None = None) -> Config:
    """A preset name, or a YAML/JSON file, then ``settings`` (``group.field=value``).

    A file holds the groups of :meth:`Config.to_dict` (any subset of fields) and
    optionally ``preset: NAME`` (the starting point, default ``tiny``) and ``name``."""
    from pathlib import Path

    if spec in PRESETS:
        cfg = get_preset(spec)
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"--config is neither a preset ({', '.join(PRESETS)}) nor a "
                              "YAML/JSON file", item=spec)
        doc = _read_config_file(path, spec)
        if not isinstance(doc, dict):
            raise ConfigError("a config file holds a mapping of groups", item=spec)
        unknown = set(doc) - set(GROUPS) - {"preset", "name"}
        if unknown:
            raise ConfigError(f"unknown config groups {sorted(unknown)}; use "
                              f"{sorted(GROUPS)}, preset, name", item=spec)
        cfg = get_preset(str(doc.get("preset", "tiny")))
        groups = {}
        for g in GROUPS:
            if not doc.get(g):
                continue
            if not isinstance(doc[g], dict):
                raise ConfigError(f"{g} must be a mapping of fields", item=spec)
            unknown = set(doc[g]) - set(GROUP_FIELDS[g])
            if unknown:
                raise ConfigError(f"unknown {g} fields {sorted(map(str, unknown))}", item=spec)
            groups[g] = {name: _file_value(g, name, value, spec) for name, value in doc[g].items()}
        cfg = replace(cfg.override(**groups), name=str(doc.get("name", path.stem)))
    return check_config(cfg.with_settings(settings or []))


CHOICES = {("train", "roll_condition"): ("true", "predicted", "scheduled"),
           ("train", "mixed_precision"): ("auto", "bf16", "fp16", "no"),
           ("sample", "guidance_convention"): ("ours", "seed"),
           ("audio", "mel_inverse"): ("nnls", "pinv"),
           ("net", "prediction"): ("data", "velocity")}


MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_ALIASES = 64  # a config needs none; an "alias bomb" needs thousands
# (low, high) per numeric field; a low in a tuple of three is exclusive. Fields not
# listed: ints in [0, 10^9], floats finite.
RANGES = {
    ("audio", "sample_rate"): (1000, 192000), ("audio", "n_fft"): (16, 65536),
    ("audio", "hop"): (1, 65536), ("audio", "n_mels"): (1, 1024), ("audio", "fmin"): (0, 96000),
    ("audio", "fmax"): (0, 96000, True), ("audio", "griffin_lim_iters"): (0, 100_000),
    ("audio", "griffin_lim_momentum"): (0, 1),
    ("net", "dim"): (1, 16384), ("net", "depth"): (1, 256), ("net", "heads"): (1, 256),
    ("net", "mlp_ratio"): (0, 64, True), ("net", "patch"): (1, 64), ("net", "roll_depth"): (0, 256),
    ("net", "roll_kernel"): (1, 255), ("net", "frame_height"): (1, 4096),
    ("net", "frame_width"): (1, 4096), ("net", "video_dim"): (1, 16384),
    ("net", "video_channels"): (1, 4096), ("net", "roll_context"): (0, 10_000),
    ("net", "roll_channels"): (1, 4096), ("net", "text_vocab"): (1, 1_000_000),
    ("net", "text_dim"): (1, 16384), ("net", "text_depth"): (0, 256),
    ("net", "text_max_tokens"): (1, 4096), ("net", "contrastive_dim"): (1, 16384),
    ("train", "batch_size"): (1, 65536), ("train", "lr"): (0, 10, True),
    ("train", "stage3_lr_scale"): (0, 100), ("train", "weight_decay"): (0, 10),
    ("train", "grad_clip"): (0, 1e6), ("train", "ema_decay"): (0, 1),
    ("train", "cond_dropout_all"): (0, 1), ("train", "cond_dropout"): (0, 1),
    ("train", "logit_normal_std"): (0, 100, True), ("train", "roll_frames_per_clip"): (1, 100_000),
    ("train", "temperature_init"): (0, 100, True), ("train", "seed"): (0, 2 ** 63 - 1),
    ("train", "grad_accum"): (1, 65536), ("train", "num_workers"): (0, 256),
    ("train", "stats_clips"): (0, 10 ** 9),
    ("sample", "steps"): (1, 100_000), ("sample", "guidance_weight"): (-100, 100),
    ("sample", "sway"): (-10, 10), ("sample", "roll_threshold"): (0, 1),
}


def _read_config_file(path, spec: str) -> dict:
    """The YAML/JSON mapping of a config file, read within bounds: at most
    :data:`MAX_CONFIG_BYTES` and :data:`MAX_YAML_ALIASES` aliases (a "billion
    laughs" file is refused before it is expanded)."""
    import yaml

    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file is larger than {MAX_CONFIG_BYTES} bytes", item=spec)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        aliases = sum(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text))
        if aliases > MAX_YAML_ALIASES:
            raise ConfigError(f"config file uses {aliases} YAML aliases (at most "
                              f"{MAX_YAML_ALIASES}); write the values out", item=spec)
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse config file ({str(exc)[:200]})", item=spec) from None
    return doc


def _file_value(group: str, name: str, value, spec: str):
    """A config file's value as the field's type: YAML 1.1 reads ``3e-4`` as a
    string, so numeric strings are parsed like ``--set`` values; other types
    (a list, a bool for a number) are refused."""
    kind = GROUP_FIELDS[group][name]
    kind = kind if isinstance(kind, str) else kind.__name__
    where = f"{group}.{name}"
    if isinstance(value, str) and kind in ("int", "float"):
        return parse_value(kind, value.strip(), f"{where}={value}")
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "str" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if kind not in ("int", "float", "str"):
        return value
    raise ConfigError(f"{where} takes a {kind}, not {type(value).__name__} {value!r:.40}",
                      item=spec)


def _check_ranges(cfg: Config) -> None:
    for group, names in GROUP_FIELDS.items():
        for name, kind in names.items():
            value = getattr(getattr(cfg, group), name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                raise ConfigError(f"{group}.{name} must be a finite number", item=str(value))
            lo, hi, *open_ = RANGES.get((group, name), (0, 10 ** 9) if isinstance(value, int)
                                        else (-math.inf, math.inf))
            if value < lo or value > hi or (open_ and value == lo):
                bound = f"{'(' if open_ else '['}{lo:g}, {hi:g}]"
                raise ConfigError(f"{group}.{name} = {value:g} is out of range {bound}",
                                  item=f"{group}.{name}")
    if cfg.net.dim % cfg.net.heads:
        raise ConfigError(f"net.dim ({cfg.net.dim}) must be a multiple of net.heads "
                          f"({cfg.net.heads})", item="net.heads")
    if cfg.audio.fmax <= cfg.audio.fmin or cfg.audio.fmax > cfg.audio.sample_rate / 2:
        raise ConfigError(f"audio.fmax ({cfg.audio.fmax:g}) must lie above audio.fmin and at "
                          f"most at half audio.sample_rate ({cfg.audio.sample_rate / 2:g})",
                          item="audio.fmax")


def check_config(cfg: Config) -> Config:
    """Fields with a fixed set of values hold one of them, numbers are finite and
    inside :data:`RANGES`; returns ``cfg``."""
    for (group, name), allowed in CHOICES.items():
        value = getattr(getattr(cfg, group), name)
        if value not in allowed:
            raise ConfigError(f"{group}.{name} must be one of {', '.join(allowed)}",
                              item=str(value))
    _check_ranges(cfg)
    return cfg


@dataclass(frozen=True)
class SeqLens:
    """Every length of one clip, derived from its duration and frame rate.

    ``audio_samples`` at the internal rate; ``feat_frames`` = ceil(samples / hop)
    rounded up to a multiple of ``patch``; ``tokens`` = feat_frames / patch;
    ``video_frames`` = round(seconds * fps) = roll frames.
    """

    seconds: float
    fps: float
    audio_samples: int
    feat_frames: int
    tokens: int
    video_frames: int
    patch: int

    @classmethod
    def derive(cls, seconds: float, fps: float, audio: AudioConfig, patch: int) -> "SeqLens":
        if seconds <= 0 or fps <= 0:
            raise ConfigError("clip seconds and fps must be positive",
                              item=f"seconds={seconds} fps={fps}")
        samples = int(round(seconds * audio.sample_rate))
        frames = int(math.ceil(samples / audio.hop))
        frames = int(math.ceil(frames / patch) * patch)
        lens = cls(float(seconds), float(fps), samples, frames, frames // patch,
                   int(round(seconds * fps)), patch)
        lens.check()
        return lens

    def check(self) -> None:
        if self.feat_frames % self.patch:
            raise ConfigError("feature frames must be a multiple of the patch size", item=str(self))
        if self.tokens * self.patch != self.feat_frames or self.tokens < 1:
            raise ConfigError("tokens * patch must equal feature frames", item=str(self))
        if self.video_frames < 1:
            raise ConfigError("a clip needs at least one video frame", item=str(self))

    @property
    def token_rate(self) -> float:
        """Audio tokens per second."""
        return self.tokens / self.seconds

    def frame_of_token(self) -> list[int]:
        """Video frame index shown at the centre of each audio token."""
        return [min(int((k + 0.5) / self.token_rate * self.fps), self.video_frames - 1)
                for k in range(self.tokens)]
