"""Output audio of a model, re-created from its ``--model`` argument or its results file.

The listening study (:mod:`copbench.listen`) and the leaderboard's sample
browser (:mod:`copbench.samples`) both need the audio a model produced for a
clip. :func:`source_for_results` turns a results JSON back into the output
source ``copbench run`` scored (a folder or checkpoint by its absolute path, a
baseline by its name and the run seed); :func:`clip_output` applies the same
resampling and length rule as ``copbench run``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

from .errors import ModelError
from .models import BASELINES, OutputSource, resolve_model


def _model_argument(results: dict) -> str | None:
    """The ``--model`` value of the command that wrote ``results`` (if recorded)."""
    command = results.get("provenance", {}).get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    for i, word in enumerate(command):
        if word == "--model" and i + 1 < len(command):
            return str(command[i + 1])
        if isinstance(word, str) and word.startswith("--model="):
            return word.split("=", 1)[1]
    return None


def source_for_results(results: dict) -> OutputSource:
    """The output source behind a results file (its system name is the file's
    ``model``, which ``--name`` may have set; the source keeps its own name).

    Baselines are found by ``provenance.model`` (kind and baseline name),
    folders and checkpoints by the absolute path in ``provenance.model.path``
    (``OUTPUT:PATH`` for a checkpoint's ``reconstruct``/``rollsynth`` outputs),
    anything else by the ``--model`` argument of the recorded command or the
    model name. Raises :class:`ModelError` when it no longer exists."""
    prov = results.get("provenance", {})
    info = prov.get("model", {}) or {}
    seed = int(prov.get("seed", 0) or 0)
    candidates = []
    baseline = info.get("baseline", info.get("name"))
    if info.get("kind") == "baseline" and baseline in BASELINES:
        candidates.append(f"baseline:{baseline}")
    output = info.get("output")  # checkpoint outputs other than generation: reconstruct, rollsynth
    if info.get("path") and output and output != "generate":
        candidates.append(f"{output}:{info['path']}")
    elif info.get("path"):
        candidates.append(str(info["path"]))
    arg = _model_argument(results)
    if arg:
        candidates.append(arg)
    candidates.append(str(results.get("model", "")))
    errors = []
    for candidate in candidates:
        try:
            source = resolve_model(candidate, seed)
        except ModelError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        return source
    raise ModelError("cannot re-create this model's outputs (" + "; ".join(errors) + "); keep its "
                     "output folder or checkpoint where `copbench run` found it",
                     item=str(results.get("model")))


def clip_output(source: OutputSource, clip) -> np.ndarray:
    """``source``'s audio for ``clip`` at the dataset rate and exact clip length
    (the ``copbench run`` rule: soxr_hq resampling, trim or zero-pad the end)."""
    from .run import _prepare_audio
    audio, sample_rate = source.audio(clip)
    return _prepare_audio(audio, sample_rate, clip, {"resampled": 0, "length_fixed": 0})


def sources_from_argument(models: str, seed: int = 0) -> list[tuple[str, OutputSource]]:
    """``(system name, source)`` for ``RESULTS_DIR`` (every results file in it,
    named by its ``model``) or a comma-separated list of ``--model`` values
    (baselines, folders, checkpoints, named by the source)."""
    path = Path(models)
    if path.is_dir() and any(path.glob("*.json")):
        from .results import read_results
        out = []
        for f in sorted(path.glob("*.json")):
            results = read_results(f)
            out.append((str(results["model"]), source_for_results(results)))
        return out
    sources = [resolve_model(m.strip(), seed) for m in models.split(",") if m.strip()]
    return [(s.name, s) for s in sources]
