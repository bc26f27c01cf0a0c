"""Training of one stage under ``accelerate``.

One CPU process by default; ``accelerate launch`` gives DDP over GPUs, nodes or
CPU processes (gloo). bf16 autocast on GPU, gradient clipping, linear warmup then
cosine decay to 10 %, EMA of the weights, CSV log and a loss-curve PNG.

Reproducibility under any process count: the global batch of step s is a
permutation drawn from ``(seed, s)``, process r takes positions r, r + W, ...;
every per-sample random draw (noise, t, condition dropout, roll-predictor
frames) comes from a generator seeded by ``(seed, stage, s, position)``. So a
2-process run computes the same global-batch gradient as a 1-process run.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from tqdm import tqdm

from .ckpt import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import ClipTensors, collate
from .errors import CheckpointError, ConfigError
from .model import CoPModel
from .presets import Config

log = logging.getLogger(__name__)


def stage_dir(run: str | Path, stage: int) -> Path:
    return Path(run) / f"stage{stage}"


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0.1 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def batch_indices(n_items: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The global batch of a step: a seeded permutation (cycled when batch > items)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    perm = torch.randperm(n_items, generator=g).tolist()
    return [perm[i % n_items] for i in range(batch_size)]


def sample_generator(seed: int, stage: int, step: int, position: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, stage, step, position]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def step_randomness(model: CoPModel, lens, positions: list[int], seed: int, stage: int,
                    step: int) -> dict:
    """Noise, t, dropout flags and roll-predictor frames for the given batch positions."""
    tc = model.cfg.train
    rows = []
    for p in positions:
        g = sample_generator(seed, stage, step, p)
        noise = torch.randn(model.audio.channels, lens.mel_frames, generator=g)
        t = model.flow.sample_t(1, generator=g)[0]
        drops = torch.rand(3, generator=g) < tc.cond_dropout
        frames = torch.randint(0, lens.video_frames, (tc.roll_frames_per_clip,), generator=g)
        rows.append({"noise": noise, "t": t, "drop_video": drops[0], "drop_text": drops[1],
                     "drop_roll": drops[2], "roll_frames": frames})
    return collate(rows)


class EMA:
    """Exponential moving average of every floating tensor of a state dict;
    decay ``min(decay, (1 + step) / (10 + step))``."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.state[k].copy_(v)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def make_accelerator() -> Accelerator:
    cuda = torch.cuda.is_available()
    return Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no",
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


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


def train(stage: int, cfg: Config, data: ClipTensors, out: str | Path, *,
          max_steps: int | None = None, save_every: int | None = None, resume: bool = False,
          init: str | Path | None = None, pairs: list[dict] | None = None,
          log_every: int = 10, progress: bool = True) -> dict:
    """Train one stage; returns ``{"ckpt", "step", "last_losses"}``.

    ``init``: checkpoint to start from (default for stage > 1:
    ``out/stage<N-1>/last.ckpt``). ``pairs``: preference pairs for stage-3 DPO
    (dicts with ``index`` into ``data``, ``mel_w`` and ``mel_l``).
    """
    if stage not in (1, 2, 3):
        raise ConfigError("stage must be 1, 2 or 3", item=str(stage))
    tc = cfg.train
    max_steps = tc.max_steps if max_steps is None else max_steps
    save_every = tc.save_every if save_every is None else save_every
    acc = make_accelerator()
    world, rank = acc.num_processes, acc.process_index
    if tc.batch_size % world:
        raise ConfigError(f"batch size {tc.batch_size} must divide by {world} processes",
                          item=str(tc.batch_size))
    sdir = stage_dir(out, stage)
    last = sdir / "last.ckpt"
    torch.manual_seed(tc.seed)
    model = CoPModel(cfg)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(last)
        model.load_state_dict(ckpt["weights"])
        init = ckpt.get("init_from")
    else:
        if init is None and stage > 1:
            init = stage_dir(out, stage - 1) / "last.ckpt"
        if init is not None:
            model.load_state_dict(load_checkpoint(init)["weights"])
        else:
            model.audio.fit_stats(data.stacked_mel())
    ref = None
    if stage == 3 and pairs:
        if init is None:
            raise CheckpointError("DPO needs a reference model: start stage 3 from a checkpoint",
                                  item=str(out))
        ref = CoPModel(cfg)
        ref.load_state_dict(load_checkpoint(init)["weights"])
        ref.eval().requires_grad_(False)
    model.set_stage(stage)
    ema = EMA(model, tc.ema_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, tc.warmup_steps, max_steps))
    step = 0
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        ema.state = ckpt["ema"]
        step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])
    model, opt = acc.prepare(model, opt)
    if ref is not None:
        ref.to(acc.device)
    core: CoPModel = acc.unwrap_model(model)

    sdir.mkdir(parents=True, exist_ok=True)
    csv_path = sdir / "log.csv"
    fields = ["step", "lr", "loss", "flow", "roll_bce", "contrastive", "dpo", "grad_norm", "seconds"]
    if acc.is_main_process and (not resume or not csv_path.is_file()):
        with open(csv_path, "w", newline="") as fh:
            csv.writer(fh).writerow(fields)

    def save() -> None:
        if acc.is_main_process:
            save_checkpoint(last, {
                "stage": stage, "step": step, "config": cfg.to_dict(),
                "weights": {k: v.detach().cpu() for k, v in core.state_dict().items()},
                "ema": ema.state, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": rng_state(), "world_size": world, "init_from": None if init is None else str(init),
                "data": {"fps": data.lens.fps, "seconds": data.lens.seconds},
            })
        acc.wait_for_everyone()

    model.train()
    t0 = time.time()
    losses: dict = {}
    bar = tqdm(total=max_steps, initial=step, desc=f"stage {stage}", unit="step",
               disable=not (progress and acc.is_main_process), leave=False)
    while step < max_steps:
        idx = batch_indices(len(data), tc.batch_size, tc.seed, step)
        positions = list(range(rank, tc.batch_size, world))
        batch = _to(collate([data[idx[p]] for p in positions]), acc.device)
        rand = _to(step_randomness(core, data.lens, positions, tc.seed, stage, step), acc.device)
        pair_batch = pair_rand = ref_err = None
        if ref is not None:
            pidx = batch_indices(len(pairs), tc.batch_size, tc.seed + 1, step)
            pb = [pairs[pidx[p]] for p in positions]
            pair_batch = collate([{**data[q["index"]], "mel_w": torch.as_tensor(q["mel_w"]),
                                   "mel_l": torch.as_tensor(q["mel_l"])} for q in pb])
            pair_batch = _to(pair_batch, acc.device)
            pair_rand = _to(step_randomness(core, data.lens, positions, tc.seed + 1, stage, step),
                            acc.device)
            with torch.no_grad(), acc.autocast():
                ref_err = ref.pair_errors(pair_batch, pair_rand)
        with acc.autocast():
            out_losses = model(batch, rand, stage, pair_batch, pair_rand, ref_err)
        acc.backward(out_losses["loss"])
        grad_norm = acc.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        ema.update(core, step)
        losses = {k: float(v.detach()) for k, v in out_losses.items()}
        bar.update(1)
        bar.set_postfix(loss=f"{losses['loss']:.3f}")
        if acc.is_main_process and (step % log_every == 0 or step == max_steps):
            with open(csv_path, "a", newline="") as fh:
                csv.writer(fh).writerow([step, sched.get_last_lr()[0]] + [
                    f"{losses[k]:.6f}" if k in losses else "" for k in fields[2:-2]]
                    + [f"{float(grad_norm):.4f}", f"{time.time() - t0:.2f}"])
        if save_every and step % save_every == 0 and step < max_steps:
            save()
    bar.close()
    save()
    if acc.is_main_process:
        write_loss_png(csv_path, sdir / "loss.png")
    return {"ckpt": str(last), "step": step, "processes": world, "last_losses": losses}


def evaluate_roll(model: CoPModel, data: ClipTensors, threshold: float = 0.5) -> dict:
    """Frame-level P/R/F1 of the Roll Predictor on every clip of ``data``, and the F1 of
    a chance predictor that turns each cell on with the data's on-rate."""
    from .roll_predictor import frame_f1

    model.eval()
    preds, rolls = [], []
    for item in (data[i] for i in range(len(data))):
        preds.append(model.roll_predictor.predict(item["frames"][None], threshold)[0])
        rolls.append(item["roll"])
    pred, roll = torch.cat(preds), torch.cat(rolls)
    scores = frame_f1(pred, roll)
    rate = float((roll > 0).float().mean())
    scores["chance_f1"] = rate  # expected F1 of random cells at the on-rate: P = R = rate
    scores["clips"] = len(data)
    return scores


def train_folder(stage: int, cfg: Config, data_dir: str | Path, out: str | Path,
                 **kwargs) -> dict:
    """Precompute the train split of a dataset folder (cached under ``out/cache``) and
    train one stage; after stage 2 also scores the Roll Predictor on the test split
    (``out/stage2/eval.json``)."""
    import json

    from .audio import build_audio
    from .ckpt import load_checkpoint as _load

    audio_repr = build_audio(cfg.audio)
    cache = Path(out) / "cache"
    data = ClipTensors.from_folder(data_dir, "train", cfg, audio_repr, cache)
    if stage == 3 and kwargs.get("pairs") is not None:
        index = {cid: i for i, cid in enumerate(data.ids)}
        kwargs["pairs"] = [{**p, "index": index[p["clip_id"]]} for p in kwargs["pairs"]
                           if p["clip_id"] in index]
    result = train(stage, cfg, data, out, **kwargs)
    if stage == 2:
        import copdata

        if copdata.open_dataset(data_dir).ids("test"):
            test = ClipTensors.from_folder(data_dir, "test", cfg, audio_repr, cache)
            model = CoPModel(cfg)
            model.load_state_dict(_load(result["ckpt"])["ema"])
            scores = evaluate_roll(model, test, cfg.sample.roll_threshold)
            (stage_dir(out, 2) / "eval.json").write_text(json.dumps(scores, indent=2) + "\n")
            result["roll_eval"] = scores
    return result
