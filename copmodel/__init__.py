"""copmodel: the three-stage flow-matching generator of CoP.

Stage 1: flow-matching DiT conditioned on video and text (V2A/T2A).
Stage 2: Roll Predictor (video -> 88-key roll) and Extra-DiT (roll stream into the
audio stream through zero-initialised projections).
Stage 3: contrastive audio-video InfoNCE and DPO for flow matching.

Public sampling API: :func:`copmodel.sample.load_sampler`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
