"""Results files: structure, provenance, deterministic JSON.

``RESULTS_DIR/<model name>.json`` holds ``model``, ``metrics`` (``{column:
{"mean", "ci95", "n", "higher_is_better"}}``), ``per_clip`` (``{clip_id:
{column: value}}``), ``pairing`` (paired count, missing and extra ids),
``errors`` (per clip), ``complete`` (no failed or missing clip), ``n_expected``,
``n_failed``, ``n_missing``, ``provenance`` and ``created`` (the only timestamp).
A results file never silently replaces another model's: writing ``NAME.json``
over a file whose model (kind and path, or baseline name) differs raises
:class:`~copbench.errors.ResultsConflictError`; pass ``--name`` to pick another.
Keys are sorted and floats written by ``json`` (``repr``), so the same inputs
give byte-identical files apart from ``created``. ``copbench mos`` adds the
listening-test columns ``mos_quality``/``mos_match`` (with ``n_raters``,
``n_ratings``, ``screened_raters``) to these files, or creates a file with
only them for a system ``copbench run`` never scored (the reference, the anchor).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import platform
import re
from pathlib import Path

SCHEMA_VERSION = 1
PACKAGES = ("numpy", "scipy", "librosa", "soxr", "opencv-python-headless", "mir_eval", "av",
            "basic-pitch", "onnxruntime", "torch", "transformers", "pretty_midi", "soundfile",
            "cop-toolkit")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def dumps(results: dict) -> str:
    return json.dumps(results, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def check_results_name(name: str) -> str:
    """A ``--name`` for a results file: letters, digits, ``_ . -`` (1-100)."""
    if not _NAME_RE.match(name or ""):
        from .errors import BenchError
        raise BenchError("a results name must be 1-100 letters, digits, '_', '.' or '-' "
                         "(not starting with '.' or '-')", item=repr(name))
    return name


def model_identity(results: dict) -> tuple:
    """What makes two results files the same model: kind and resolved path (folder,
    checkpoint) or name (baseline)."""
    info = (results.get("provenance") or {}).get("model") or {}
    return (info.get("kind"), info.get("path") or info.get("name") or results.get("model"))


def results_path(results: dict, results_dir: str | Path) -> Path:
    """Where ``results`` will be written, checked first (a run calls this before
    scoring, with ``model`` and ``provenance.model`` filled in): the folder is a
    folder, and ``NAME.json`` there holds no other model's results."""
    from copdata.ids import path_under

    from .errors import BenchError, ResultsConflictError
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise BenchError("--out is a file, not a results folder", item=str(results_dir))
    path = path_under(results_dir, f"{safe_name(results['model'])}.json")
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict) or model_identity(old) != model_identity(results):
            theirs = model_identity(old) if isinstance(old, dict) else ("not copbench results",)
            raise ResultsConflictError(
                f"{path} holds the results of another model ({theirs[-1]}); this run is "
                f"{model_identity(results)[-1]}: pass --name to name it, or another --out",
                item=str(path))
    return path


def write_results(results: dict, results_dir: str | Path) -> Path:
    path = results_path(results, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dumps(results), encoding="utf-8")
    tmp.replace(path)
    return path


def read_results(path: str | Path) -> dict:
    from .errors import BenchError
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BenchError(f"not a copbench results file ({exc}); remove it or move it out of "
                         "the results folder", item=str(path)) from None
    if not isinstance(data, dict) or "metrics" not in data or "model" not in data:
        raise BenchError("not a copbench results file (no 'model'/'metrics')", item=str(path))
    problem = metrics_problem(data)
    if problem:
        raise BenchError(f"not a valid copbench results file ({problem}); copbench writes only "
                         "finite numbers: fix or remove the file", item=str(path))
    return data


def _finite(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def metrics_problem(results: dict) -> str | None:
    """What makes a results dict's ``metrics`` unrankable (a string or infinite
    ``mean``, a malformed ``ci95``), or None."""
    if not isinstance(results.get("model"), str):
        return "'model' is not a string"
    metrics = results.get("metrics")
    if not isinstance(metrics, dict):
        return "'metrics' is not an object"
    for name, entry in metrics.items():
        if not isinstance(entry, dict):
            return f"metric {name!r} is not an object"
        mean = entry.get("mean")
        if mean is not None and not _finite(mean):
            return f"metric {name!r} has mean {mean!r:.40}, not a finite number"
        ci = entry.get("ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                                   and all(v is None or _finite(v) for v in ci)):
            return f"metric {name!r} has ci95 {ci!r:.60}, not [low, high] finite numbers"
    return None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def strip_created(results: dict) -> dict:
    return {k: v for k, v in results.items() if k != "created"}


def provenance_line(results: dict) -> str:
    """One line: dataset fingerprint, split, seed, metric versions, weights."""
    prov = results.get("provenance", {})
    ds = prov.get("dataset", {})
    metrics = prov.get("metrics", {})
    versions = ",".join(f"{k}@{v.get('version')}" for k, v in sorted(metrics.items()))
    weights = prov.get("embedder_weights") or {}
    wtxt = ",".join(f"{k}:{str(v)[:12]}" for k, v in sorted(weights.items())) or "none"
    return (f"data={str(ds.get('fingerprint', ''))[:16]} split={ds.get('split')} "
            f"n={results.get('pairing', {}).get('paired')} seed={prov.get('seed')} "
            f"metrics={versions} weights={wtxt} copbench={prov.get('copbench_version')}")
