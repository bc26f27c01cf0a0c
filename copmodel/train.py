"""Training of one stage under ``accelerate``.

One CPU process by default; ``accelerate launch`` gives DDP over GPUs, nodes or
CPU processes (gloo). Autocast precision from ``train.mixed_precision`` (bf16 on GPUs
that support it by default), gradient accumulation (``train.grad_accum``), gradient
clipping, AdamW without weight decay on norms, biases, null embeddings and the
InfoNCE temperature, linear warmup then cosine decay to 10 %, EMA of the weights on
the training device, CSV log and a loss-curve PNG.

Reproducibility under any process count: the global batch of step s is a
permutation drawn from ``(seed, s)``, process r takes positions r, r + W, ...;
every per-sample random draw (noise, t, condition dropout, roll-predictor
frames) comes from a generator seeded by ``(seed, stage, s, position)``. So a
2-process run computes the same global-batch gradient as a 1-process run.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import time
from collections import OrderedDict
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from tqdm import tqdm

from .ckpt import load_checkpoint, rng_state, save_checkpoint, set_rng_state, to_cpu
from .data import ClipTensors, collate
from .schedule import (EMA, batch_indices, lr_factor, predicted_roll_probability,  # noqa: F401
                       sample_generator, step_randomness)
from .errors import CheckpointError, ConfigError
from .model import CoPModel
from .presets import Config

log = logging.getLogger(__name__)


def stage_dir(run: str | Path, stage: int) -> Path:
    return Path(run) / f"stage{stage}"


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class StepBatches(torch.utils.data.Dataset):
    """Item ``i``: ``(step, [micro-batch, ...])``, the CPU batches of one process for step
    ``start + i`` (what :meth:`Trainer.batch` reads), so that a DataLoader's workers read
    and collate them while the device trains on the previous steps."""

    def __init__(self, data: ClipTensors, batch_size: int, seed: int,
                 positions: list[list[int]], start: int, stop: int):
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.positions, self.start, self.stop = positions, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> tuple[int, list[dict]]:
        step = self.start + i
        idx = batch_indices(len(self.data), self.batch_size, self.seed, step)
        return step, [collate([self.data[idx[p]] for p in pos]) for pos in self.positions]


# Stages whose trainable parameters can miss a gradient in some step (DDP must then
# search the graph for them, ``find_unused_parameters``). Every stage uses all of its
# trainable parameters in every step (null embeddings enter through ``torch.where``
# whether or not a condition is dropped); tests/test_model_gpu.py checks this.
FIND_UNUSED = {1: False, 2: False, 3: False}


def resolve_precision(setting: str, cuda: bool, bf16_supported: bool) -> str:
    """``train.mixed_precision`` -> accelerate's ``mixed_precision``: ``auto`` is bf16 on
    a GPU that supports it and fp32 (``no``) elsewhere; fp16 needs a GPU."""
    if setting == "auto":
        return "bf16" if cuda and bf16_supported else "no"
    if setting not in ("bf16", "fp16", "no"):
        raise ConfigError("train.mixed_precision must be one of auto, bf16, fp16, no",
                          item=setting)
    if setting == "fp16" and not cuda:
        raise ConfigError("fp16 mixed precision needs a GPU; use bf16 or no on a CPU",
                          item=setting)
    return setting


def make_accelerator(cfg: Config | None = None, stage: int = 1,
                     device: str | None = None) -> Accelerator:
    """The accelerator of one stage: CUDA when present (``device="cpu"`` forces the
    CPU), precision from ``cfg.train.mixed_precision`` (default ``auto``), DDP's
    unused-parameter search only for the stages in :data:`FIND_UNUSED`."""
    cuda = torch.cuda.is_available() and device != "cpu"
    setting = cfg.train.mixed_precision if cfg is not None else "auto"
    precision = resolve_precision(setting, cuda, cuda and torch.cuda.is_bf16_supported())
    handler = DistributedDataParallelKwargs(find_unused_parameters=FIND_UNUSED[stage])
    return Accelerator(cpu=not cuda, mixed_precision=precision, kwargs_handlers=[handler])


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Parameters AdamW leaves without weight decay: biases and norm gains (< 2 dims),
    learned null embeddings (``null_*``) and the InfoNCE temperature (``log_temp``)."""
    leaf = name.rsplit(".", 1)[-1]
    return param.ndim < 2 or leaf.startswith("null_") or leaf == "log_temp"


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups of the trainable parameters: decayed, and not (:func:`no_decay`)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": weight_decay,
             "names": [n for n, p in named if not no_decay(n, p)]},
            {"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0,
             "names": [n for n, p in named if no_decay(n, p)]}]


def write_loss_png(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in rows[0]:
        if key in ("step", "lr", "grad_norm", "seconds"):
            continue
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in ("", None)]
        if pts:
            ax.plot(*zip(*pts), label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(png_path.parent.name)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


LOG_FIELDS = ["step", "lr", "loss", "flow", "roll_bce", "contrastive", "dpo", "grad_norm",
              "seconds"]


class Trainer:
    """One stage of training: :meth:`restore`, :meth:`batch`, :meth:`dpo_batch`,
    :meth:`step`, :meth:`save`, :meth:`log`; :meth:`run` loops them.

    ``init``: checkpoint to start from (default for stage > 1:
    ``out/stage<N-1>/last.ckpt``). ``prefs``: a preferences file's content
    (:func:`copmodel.prefs.load_preferences`) whose pairs carry ``index`` into
    ``data``; DPO's reference is the EMA of the checkpoint that generated them.
    """

    predicted_cache_size = 2048  # clips whose predicted roll (T x 88 floats) is kept

    def __init__(self, stage: int, cfg: Config, data: ClipTensors, out: str | Path, *,
                 max_steps: int | None = None, save_every: int | None = None,
                 resume: bool = False, init: str | Path | None = None,
                 prefs: dict | None = None, log_every: int = 10, progress: bool = True,
                 accelerator: Accelerator | None = None):
        if stage not in (1, 2, 3):
            raise ConfigError("stage must be 1, 2 or 3", item=str(stage))
        if prefs is not None and stage != 3:
            raise ConfigError("preference pairs (DPO) belong to stage 3", item=str(stage))
        if prefs is not None and not prefs["pairs"]:
            raise ConfigError("DPO was asked for but no preference pair is usable (none in the "
                              "file, or none of its clips is in the train split); mine pairs on "
                              "the train split or train stage 3 without --prefs",
                              item=str(prefs.get("source", "prefs")))
        self.stage, self.cfg, self.data, self.out = stage, cfg, data, Path(out)
        tc = cfg.train
        self.max_steps = tc.max_steps if max_steps is None else max_steps
        self.save_every = tc.save_every if save_every is None else save_every
        self.log_every, self.progress, self.prefs = log_every, progress, prefs
        self.acc = accelerator or make_accelerator(cfg, stage)
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        if tc.batch_size % (self.world * tc.grad_accum):
            raise ConfigError(f"batch size {tc.batch_size} must divide by {self.world} processes "
                              f"x {tc.grad_accum} accumulation steps", item=str(tc.batch_size))
        self.sdir = stage_dir(out, stage)
        self.last = self.sdir / "last.ckpt"
        self.init = init
        self._batches = None  # iterator over self.loader() while run() trains
        self.step_count = 0
        self.losses: dict = {}
        self._predicted: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.restore(resume)

    # ------------------------------------------------------------ set-up
    def restore(self, resume: bool) -> None:
        """Build the model (fresh, from ``init`` or from ``last.ckpt`` with its optimizer,
        scheduler, EMA, step and RNG states), the DPO reference, optimizer and EMA."""
        cfg, tc, stage = self.cfg, self.cfg.train, self.stage
        torch.manual_seed(tc.seed)
        model = CoPModel(cfg)
        ckpt = None
        if resume:
            ckpt = load_checkpoint(self.last)
            model.load_state_dict(ckpt["weights"])
            self.init = ckpt.get("init_from")
        else:
            if self.init is None and stage > 1:
                self.init = stage_dir(self.out, stage - 1) / "last.ckpt"
            if self.init is not None:
                # the previous stage's EMA: the weights its samples (and DPO's preference
                # pairs) come from, so DPO's policy starts equal to its reference
                model.load_state_dict(load_checkpoint(self.init)["ema"])
            else:
                self.fit_stats(model)
        self.ref = self._reference() if self.prefs is not None else None
        model.set_stage(stage)
        lr = tc.lr * (tc.stage3_lr_scale if stage == 3 else 1.0)
        opt = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, tc.warmup_steps, self.max_steps))
        self.model, self.opt = self.acc.prepare(model, opt)
        self.core: CoPModel = self.acc.unwrap_model(self.model)
        self.params = [p for p in self.core.parameters() if p.requires_grad]
        # the EMA follows the model to its device: built after prepare, from the unwrapped
        # model (MMAudio's order), so its update never mixes devices
        self.ema = EMA(self.core, tc.ema_decay)
        if ckpt is not None:
            stored = ckpt["optimizer"]["param_groups"]
            if len(stored) != len(self.opt.param_groups):
                raise CheckpointError(
                    f"the checkpoint's optimizer has {len(stored)} parameter group(s), this "
                    f"version uses {len(self.opt.param_groups)} (decay / no decay); resume it "
                    "with the version that wrote it, or start a new stage from it with --init",
                    item=str(self.last))
            self.opt.load_state_dict(ckpt["optimizer"])  # torch casts the state to the params' device
            self.sched.load_state_dict(ckpt["scheduler"])
            self.ema.load_state_dict(ckpt["ema"])
            self.step_count = int(ckpt["step"])
            set_rng_state(ckpt["rng"])
        if self.ref is not None:
            self.ref.to(self.acc.device)

    @torch.no_grad()
    def fit_stats(self, model: CoPModel) -> None:
        """Normalisation statistics of the training features: a streaming pass over the
        clips (or ``train.stats_clips`` of them, seeded) on the main process, broadcast
        to the others (memory independent of the data size, computed once)."""
        from accelerate.utils import broadcast

        tc, channels = self.cfg.train, model.audio.channels
        packed = torch.zeros(channels + 1)
        if self.acc.is_main_process:
            from .audio import FeatureStats

            stats = FeatureStats(channels)
            for features in self.data.feature_maps(tc.stats_clips, tc.seed):
                stats.add(features)
            mean, std = stats.result()
            packed = torch.cat([mean, torch.tensor([std])])
        if self.world > 1:
            packed = broadcast(packed.to(self.acc.device), from_process=0).cpu()
        model.audio.set_stats(packed[:channels], float(packed[channels]))

    def _reference(self) -> CoPModel:
        """The weights that generated the preference pairs: the EMA of ``info.ckpt``,
        checked against the sha256 recorded when the pairs were made."""
        from .ckpt import file_hash

        info = self.prefs.get("info", {})
        path = info.get("ckpt")
        if not path or not Path(path).is_file():
            raise CheckpointError("DPO's reference is the checkpoint that generated the "
                                  "preference pairs, and it is not there; keep it or mine "
                                  "pairs again", item=str(path))
        if info.get("ckpt_sha256") and file_hash(path) != info["ckpt_sha256"]:
            raise CheckpointError("the checkpoint that generated the preference pairs has "
                                  "changed since (sha256 differs); mine pairs again", item=path)
        ref = CoPModel(self.cfg)
        ref.load_state_dict(load_checkpoint(path)["ema"])
        return ref.eval().requires_grad_(False)

    # ------------------------------------------------------------ one step
    def positions(self, micro: int = 0) -> list[int]:
        """Global-batch positions of this process in micro-batch ``micro``: process r takes
        r, r + W, ... and micro-batch m the m-th of ``grad_accum`` equal slices of them."""
        tc = self.cfg.train
        mine = list(range(self.rank, tc.batch_size, self.world))
        size = len(mine) // tc.grad_accum
        return mine[micro * size:(micro + 1) * size]

    def loader(self, start: int) -> torch.utils.data.DataLoader:
        """Batches of steps ``start`` .. ``max_steps - 1`` read ahead by
        ``train.num_workers`` workers (pinned memory on CUDA, 2 steps prefetched each)."""
        tc = self.cfg.train
        steps = StepBatches(self.data, tc.batch_size, tc.seed,
                            [self.positions(m) for m in range(tc.grad_accum)], start,
                            self.max_steps)
        return torch.utils.data.DataLoader(
            steps, batch_size=None, shuffle=False, num_workers=tc.num_workers,
            pin_memory=self.acc.device.type == "cuda",
            prefetch_factor=2 if tc.num_workers > 0 else None)

    def batch(self, step: int, micro: int = 0, cpu_batch: dict | None = None
              ) -> tuple[dict, dict]:
        """This process's share of (micro-batch ``micro`` of) the global batch of ``step``
        (``cpu_batch``: already read by the loader) and its randomness, drawn on the
        device."""
        tc = self.cfg.train
        idx = batch_indices(len(self.data), tc.batch_size, tc.seed, step)
        positions = self.positions(micro)
        if cpu_batch is None:
            cpu_batch = collate([self.data[idx[p]] for p in positions])
        batch = _to(cpu_batch, self.acc.device)
        p_pred = predicted_roll_probability(tc.roll_condition, self.stage, step,
                                            tc.roll_schedule_steps)
        rand = step_randomness(self.core, self.data.lens, positions, tc.seed, self.stage, step,
                               p_pred, device=self.acc.device)
        if self.stage == 3 and p_pred > 0:
            batch["roll_predicted"] = torch.stack([self.predicted_roll(idx[p], batch["frames"][j])
                                                   for j, p in enumerate(positions)])
        return batch, _to(rand, self.acc.device)

    @torch.no_grad()
    def predicted_roll(self, index: int, frames: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen (stage 3) Roll Predictor's probabilities for clip ``index``
        (``frames``: its frames when at hand), kept in a least-recently-used cache of at
        most :attr:`predicted_cache_size` clips."""
        if index in self._predicted:
            self._predicted.move_to_end(index)
            return self._predicted[index]
        if frames is None:
            frames = self.data[index]["frames"]
        roll = self.core.roll_predictor.probabilities(frames[None].to(self.acc.device))[0]
        self._predicted[index] = roll
        while len(self._predicted) > self.predicted_cache_size:
            self._predicted.popitem(last=False)
        return roll

    def dpo_batch(self, step: int, micro: int = 0
                  ) -> tuple[dict, dict, tuple] | tuple[None, None, None]:
        """Preference pairs of ``step`` (with the roll and guidance weight they were
        sampled with), their shared noise and t, and the reference model's errors."""
        if self.ref is None:
            return None, None, None
        tc, pairs = self.cfg.train, self.prefs["pairs"]
        pidx = batch_indices(len(pairs), tc.batch_size, tc.seed + 1, step)
        positions = self.positions(micro)
        rows = []
        for q in (pairs[pidx[p]] for p in positions):
            item = self.data[q["index"]]
            rows.append({**item, "feats_w": torch.as_tensor(q["feats_w"]).float(),
                         "feats_l": torch.as_tensor(q["feats_l"]).float(),
                         "roll": torch.as_tensor(q["roll"]).float(),
                         "guidance_weight": torch.tensor(float(q["guidance_weight"]))})
        pair_batch = _to(collate(rows), self.acc.device)
        pair_rand = step_randomness(self.core, self.data.lens, positions, tc.seed + 1,
                                    self.stage, step, device=self.acc.device)
        with torch.no_grad(), self.acc.autocast():
            ref_err = self.ref.pair_errors(pair_batch, pair_rand)
        return pair_batch, pair_rand, ref_err

    def step(self) -> dict:
        """One optimizer step over ``grad_accum`` micro-batches (gradients of the mean
        loss of each, divided by ``grad_accum``, add up to the gradient of the whole
        batch; DDP synchronises only the last); returns the losses (floats, means over
        the micro-batches) and the gradient norm."""
        step, accum = self.step_count, self.cfg.train.grad_accum
        prefetched = None
        if self._batches is not None:
            loaded, prefetched = next(self._batches)
            if loaded != step:
                raise RuntimeError(f"data loader is at step {loaded}, the trainer at {step}")
        totals: dict = {}
        for micro in range(accum):
            batch, rand = self.batch(step, micro,
                                     None if prefetched is None else prefetched[micro])
            pair_batch, pair_rand, ref_err = self.dpo_batch(step, micro)
            sync = micro == accum - 1 or self.world == 1
            with (contextlib.nullcontext() if sync else self.acc.no_sync(self.model)):
                with self.acc.autocast():
                    out = self.model(batch, rand, self.stage, pair_batch, pair_rand, ref_err)
                self.acc.backward(out["loss"] / accum)
            for k, v in out.items():
                totals[k] = totals.get(k, 0.0) + v.detach().float() / accum
        grad_norm = self.acc.clip_grad_norm_(self.params, self.cfg.train.grad_clip)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step_count += 1
        self.ema.update(self.core, self.step_count)
        self.losses = {k: float(v) for k, v in totals.items()}
        return {**self.losses, "grad_norm": float(grad_norm)}

    # ------------------------------------------------------------ output
    def save(self) -> None:
        if self.acc.is_main_process:
            save_checkpoint(self.last, {
                "stage": self.stage, "step": self.step_count, "config": self.cfg.to_dict(),
                "weights": {k: v.detach().cpu() for k, v in self.core.state_dict().items()},
                "ema": self.ema.state_dict(), "optimizer": to_cpu(self.opt.state_dict()),
                "scheduler": self.sched.state_dict(), "rng": rng_state(),
                "world_size": self.world,
                "init_from": None if self.init is None else str(self.init),
                "prefs": None if self.prefs is None else self.prefs.get("info"),
                "data": {"fps": self.data.lens.fps, "seconds": self.data.lens.seconds},
            })
        self.acc.wait_for_everyone()

    def log(self, row: dict, t0: float) -> None:
        """Append a row to ``log.csv`` (main process)."""
        if not self.acc.is_main_process:
            return
        with open(self.sdir / "log.csv", "a", newline="") as fh:
            csv.writer(fh).writerow(
                [self.step_count, self.sched.get_last_lr()[0]]
                + [f"{row[k]:.6f}" if k in row else "" for k in LOG_FIELDS[2:-2]]
                + [f"{row['grad_norm']:.4f}", f"{time.time() - t0:.2f}"])

    def run(self, resume: bool = False) -> dict:
        """Train to ``max_steps``; returns ``{"ckpt", "step", "processes", "last_losses"}``."""
        self.sdir.mkdir(parents=True, exist_ok=True)
        csv_path = self.sdir / "log.csv"
        if self.acc.is_main_process and (not resume or not csv_path.is_file()):
            with open(csv_path, "w", newline="") as fh:
                csv.writer(fh).writerow(LOG_FIELDS)
        self.model.train()
        t0 = time.time()
        bar = tqdm(total=self.max_steps, initial=self.step_count, desc=f"stage {self.stage}",
                   unit="step", disable=not (self.progress and self.acc.is_main_process),
                   leave=False)
        if self.cfg.train.num_workers > 0 and self.step_count < self.max_steps:
            self._batches = iter(self.loader(self.step_count))
        while self.step_count < self.max_steps:
            row = self.step()
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if self.step_count % self.log_every == 0 or self.step_count == self.max_steps:
                self.log(row, t0)
            if (self.save_every and self.step_count % self.save_every == 0
                    and self.step_count < self.max_steps):
                self.save()
        bar.close()
        self._batches = None
        self.save()
        if self.acc.is_main_process:
            write_loss_png(csv_path, self.sdir / "loss.png")
        return {"ckpt": str(self.last), "step": self.step_count, "processes": self.world,
                "last_losses": self.losses}


def train(stage: int, cfg: Config, data: ClipTensors, out: str | Path, *,
          resume: bool = False, **kwargs) -> dict:
    """Train one stage (see :class:`Trainer`)."""
    return Trainer(stage, cfg, data, out, resume=resume, **kwargs).run(resume=resume)


def evaluate_roll(model: CoPModel, data: ClipTensors, threshold: float = 0.5) -> dict:
    """Frame-level P/R/F1 of the Roll Predictor on every clip of ``data``, and the F1 of
    a chance predictor that turns each cell on with the data's on-rate."""
    from .roll_predictor import frame_f1

    model.eval()
    device = next(model.parameters()).device
    preds, rolls = [], []
    for item in (data[i] for i in range(len(data))):
        frames = item["frames"][None].to(device)
        preds.append(model.roll_predictor.predict(frames, threshold)[0].cpu())
        rolls.append(item["roll"])
    pred, roll = torch.cat(preds), torch.cat(rolls)
    scores = frame_f1(pred, roll)
    rate = float((roll > 0).float().mean())
    scores["chance_f1"] = rate  # expected F1 of random cells at the on-rate: P = R = rate
    scores["clips"] = len(data)
    return scores


def attach_pairs(prefs: dict, data: ClipTensors) -> dict:
    """Keep the pairs whose clip is in ``data`` and give each its ``index``."""
    index = {cid: i for i, cid in enumerate(data.ids)}
    pairs = [{**p, "index": index[p["clip_id"]]} for p in prefs["pairs"] if p["clip_id"] in index]
    return {**prefs, "pairs": pairs}


def train_folder(stage: int, cfg: Config, data_dir: str | Path, out: str | Path,
                 prefs: dict | None = None, **kwargs) -> dict:
    """Precompute the train split of a dataset folder (cached under ``out/cache`` by the
    main process) and train one stage; after stage 2 also scores the Roll Predictor
    on the test split (``out/stage2/eval.json``)."""
    import json

    from .audio import build_audio
    from .ckpt import load_checkpoint as _load

    acc = kwargs.pop("accelerator", None) or make_accelerator(cfg, stage)
    progress = kwargs.get("progress", True) and acc.is_main_process
    audio_repr = build_audio(cfg.audio).to(acc.device)  # precompute (codecs too) on the device
    cache = Path(out) / "cache"
    data = ClipTensors.from_folder(data_dir, "train", cfg, audio_repr, cache, accelerator=acc,
                                   progress=progress)
    if prefs is not None:
        prefs = attach_pairs(prefs, data)
    result = train(stage, cfg, data, out, prefs=prefs, accelerator=acc, **kwargs)
    if stage == 2 and acc.is_main_process:
        import copdata

        if copdata.open_dataset(data_dir).ids("test"):
            test = ClipTensors.from_folder(data_dir, "test", cfg, audio_repr, cache,
                                           progress=progress)
            model = CoPModel(cfg)
            model.load_state_dict(_load(result["ckpt"])["ema"])
            scores = evaluate_roll(model.to(acc.device), test, cfg.sample.roll_threshold)
            (stage_dir(out, 2) / "eval.json").write_text(json.dumps(scores, indent=2) + "\n")
            result["roll_eval"] = scores
    return result
