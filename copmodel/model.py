"""The assembled CoP generator: encoders, audio DiT, Extra-DiT, Roll Predictor.

Every stage uses the same module tree (so checkpoints load strictly across
stages); the stage decides what is used and trained:

- stage 1: flow loss conditioned on video + text;
- stage 2: + roll stream (ground-truth roll) and the Roll Predictor's BCE;
- stage 3: + contrastive InfoNCE (audio tokens before video enters vs. video) and, with
  preference pairs, DPO against a frozen reference model.

A batch is a dict: ``feats`` raw audio features (the representation's feature map) ``(B, C, M)``; ``frames`` uint8
``(B, T, h, w)``; ``video_features`` ``(B, T, D)`` when a pretrained video encoder
is used; ``roll`` ``(B, T, 88)`` in {0, 1}; ``text`` ids ``(B, L)`` or features
``(B, L, D)``; ``text_mask`` ``(B, L)``. Per-step randomness is passed in
(``noise``, ``t``, ``drop_video``, ``drop_text``, ``drop_roll``) so that runs are
reproducible under any number of processes.
"""

from __future__ import annotations

import torch
from torch import nn

from .audio import build_audio
from .extra_dit import ExtraDiT
from .flow import FlowMatching
from .losses import ContrastiveHead, dpo_flow_loss
from .presets import Config
from .roll_predictor import RollPredictor, roll_bce
from .text import build_text_encoder
from .transformer import AudioDiT, Conditions
from .video import build_video_encoder

TRAINABLE = {
    1: ("video_encoder", "text_encoder", "dit"),
    2: ("video_encoder", "text_encoder", "dit", "extra", "roll_predictor"),
    3: ("video_encoder", "text_encoder", "dit", "extra", "contrastive"),
}


class CoPModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.audio = build_audio(cfg.audio)
        self.video_encoder = build_video_encoder(cfg.net)
        self.text_encoder = build_text_encoder(cfg.net)
        self.dit = AudioDiT(cfg.net, self.audio.channels)
        self.extra = ExtraDiT(cfg.net)
        self.roll_predictor = RollPredictor(cfg.net)
        self.contrastive = ContrastiveHead(cfg.net.dim, cfg.net.video_dim, cfg.net.contrastive_dim,
                                           cfg.train.temperature_init)
        self.flow = FlowMatching(cfg.train.logit_normal_mean, cfg.train.logit_normal_std)

    def set_stage(self, stage: int) -> None:
        """Freeze every part the stage does not train."""
        for name, module in self.named_children():
            module.requires_grad_(name in TRAINABLE[stage])

    # ------------------------------------------------------------ conditions
    def conditions(self, batch: dict, n_tokens: int, drop_video: torch.Tensor,
                   drop_text: torch.Tensor, drop_roll: torch.Tensor | None = None,
                   roll: torch.Tensor | None = None) -> Conditions:
        """Encode video and text once per sample; ``roll`` enables the roll stream."""
        if "video_features" in batch:
            video = self.video_encoder(batch["video_features"])
        else:
            video = self.video_encoder(batch["frames"])
        text = self.text_encoder(batch["text"], batch["text_mask"])
        cond = self.dit.prepare(video, text, batch["text_mask"], n_tokens, drop_video, drop_text)
        if roll is not None:
            if drop_roll is None:
                drop_roll = torch.zeros(roll.shape[0], dtype=torch.bool, device=roll.device)
            cond.roll = self.extra.embed(roll, n_tokens, drop_roll)
        return cond

    def predict(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions,
                hidden_at: int | None = None):
        """The network output (velocity or data, per ``cfg.net.prediction``)."""
        extra = None
        if cond.roll is not None:
            c = self.dit.t_embed(t) + cond.global_cond
            extra = self.extra(cond.roll, c)
        return self.dit(x, t, cond, extra=extra, hidden_at=hidden_at)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
        out = self.predict(x, t, cond)
        if self.cfg.net.prediction == "data":
            return self.flow.velocity_from_data(out, x, t)
        return out

    def flow_error(self, out: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Per-sample training error of a network output (see flow.py)."""
        if self.cfg.net.prediction == "data":
            return self.flow.per_sample_data_loss(out, x1)
        return self.flow.per_sample_loss(out, x0, x1)

    # ------------------------------------------------------------ roll condition
    def roll_condition(self, batch: dict, use_predicted: torch.Tensor | None = None) -> torch.Tensor:
        """The roll the audio model sees in training: ``batch["roll"]`` (binary ground
        truth) where ``use_predicted`` is False, the Roll Predictor's probabilities
        (no gradient; ``batch["roll_predicted"]`` when precomputed, else computed for
        the rows that use them) where it is True (see ``train.roll_condition``)."""
        roll = batch["roll"]
        if use_predicted is None or not bool(use_predicted.any()):
            return roll
        if "roll_predicted" in batch:
            soft = batch["roll_predicted"].to(roll.dtype)
        else:
            soft = torch.zeros_like(roll)
            soft[use_predicted] = self.roll_predictor.probabilities(
                batch["frames"][use_predicted]).to(roll.dtype)
        return torch.where(use_predicted[:, None, None], soft, roll)

    def sampling_roll(self, frames: torch.Tensor) -> torch.Tensor:
        """The roll used at sampling time, in the form the model was trained on: the
        predictor's probabilities, or (``roll_condition = "true"``) their threshold."""
        if self.cfg.train.roll_condition == "true":
            return self.roll_predictor.predict(frames, self.cfg.sample.roll_threshold)
        return self.roll_predictor.probabilities(frames)

    # ------------------------------------------------------------ training
    def forward(self, batch: dict, rand: dict, stage: int, pairs: dict | None = None,
                pair_rand: dict | None = None, ref_errors: tuple | None = None) -> dict:
        """Losses of one training step; ``loss`` is their weighted sum."""
        tc = self.cfg.train
        x1 = self.audio.normalize(batch["feats"])
        n_tokens = x1.shape[-1] // self.cfg.net.patch
        roll = self.roll_condition(batch, rand.get("use_predicted_roll")) if stage >= 2 else None
        cond = self.conditions(batch, n_tokens, rand["drop_video"], rand["drop_text"],
                               rand["drop_roll"], roll)
        xt = self.flow.interpolate(rand["noise"], x1, rand["t"])
        out: dict = {}
        pred = self.predict(xt, rand["t"], cond)
        out["flow"] = self.flow_error(pred, rand["noise"], x1).mean()
        loss = out["flow"]
        if stage == 2:
            idx = rand["roll_frames"]  # (B, K) frames the predictor trains on this step
            logits = self.roll_predictor(batch["frames"], idx)
            target = torch.stack([batch["roll"][i, idx[i]] for i in range(idx.shape[0])])
            out["roll_bce"] = roll_bce(logits, target)
            loss = loss + tc.roll_loss_weight * out["roll_bce"]
        if stage == 3:
            # audio tokens before any video enters (see losses.py) vs the clip's video
            out["contrastive"] = self.contrastive(self.dit.audio_tokens(xt), cond.video_pooled)
            loss = loss + tc.contrastive_weight * out["contrastive"]
            if pairs is not None:
                err_w, err_l = self.pair_errors(pairs, pair_rand)
                out["dpo"] = dpo_flow_loss(err_w, err_l, *ref_errors, beta=tc.dpo_beta)
                loss = loss + tc.dpo_weight * out["dpo"]
        out["loss"] = loss
        return out

    def guided_output(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions,
                      uncond: Conditions | None, weight, convention: str) -> torch.Tensor:
        """The network output (velocity or data) under classifier-free guidance; guiding
        data predictions is the same as guiding velocities (v is affine in x1_hat)."""
        out = self.predict(x, t, cond)
        if uncond is None:
            return out
        return self.flow.guide(out, self.predict(x, t, uncond), weight, convention)

    def null_conditions(self, batch: dict, n_tokens: int, roll: torch.Tensor | None,
                        convention: str) -> Conditions:
        """The unconditional branch: every condition null (``ours``) or video and text
        null with the roll kept (``seed``)."""
        b = batch["text"].shape[0]
        yes = torch.ones(b, dtype=torch.bool, device=batch["text"].device)
        keep_roll = torch.zeros_like(yes) if convention == "seed" else yes
        return self.conditions(batch, n_tokens, yes, yes, keep_roll, roll)

    def pair_errors(self, pairs: dict, rand: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pair flow errors of winner ``feats_w`` and loser ``feats_l`` (shared noise, t),
        under the conditions that generated the pair: ``pairs["roll"]`` (the roll the
        sampler used), and guidance weight ``pairs["guidance_weight"]`` (one per pair) with the
        sampling convention of the config."""
        xw = self.audio.normalize(pairs["feats_w"])
        xl = self.audio.normalize(pairs["feats_l"])
        n_tokens = xw.shape[-1] // self.cfg.net.patch
        no = torch.zeros(xw.shape[0], dtype=torch.bool, device=xw.device)
        roll = pairs.get("roll")
        cond = self.conditions(pairs, n_tokens, no, no, no, roll)
        convention = self.cfg.sample.guidance_convention
        guided = "guidance_weight" in pairs
        uncond = self.null_conditions(pairs, n_tokens, roll, convention) if guided else None
        weight = (pairs["guidance_weight"].reshape(-1, *([1] * (xw.dim() - 1))) if guided
                  else 1.0)
        errs = []
        for x1 in (xw, xl):
            xt = self.flow.interpolate(rand["noise"], x1, rand["t"])
            pred = self.guided_output(xt, rand["t"], cond, uncond, weight, convention)
            errs.append(self.flow_error(pred, rand["noise"], x1))
        return errs[0], errs[1]

    # ------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, batch: dict, noise: torch.Tensor, stage: int, steps: int,
                 guidance: float, convention: str | None = None, sway: float | None = None
                 ) -> torch.Tensor:
        """Raw (denormalised) features ``(B, C, M)`` from ``noise`` by Euler with
        classifier-free guidance of weight ``guidance`` (``convention`` and ``sway``
        default to the config's). For stage >= 2
        ``batch["roll"]`` must hold the roll (see :meth:`sampling_roll`)."""
        convention = self.cfg.sample.guidance_convention if convention is None else convention
        sway = self.cfg.sample.sway if sway is None else sway
        b = noise.shape[0]
        n_tokens = noise.shape[-1] // self.cfg.net.patch
        no = torch.zeros(b, dtype=torch.bool, device=noise.device)
        roll = batch["roll"] if stage >= 2 else None
        cond = self.conditions(batch, n_tokens, no, no, no, roll)
        uncond = self.null_conditions(batch, n_tokens, roll, convention)
        x = self.flow.sample(lambda x, t: self.velocity(x, t, cond), noise, steps,
                             uncond_fn=lambda x, t: self.velocity(x, t, uncond), weight=guidance,
                             convention=convention, sway=sway)
        return self.audio.denormalize(x)
