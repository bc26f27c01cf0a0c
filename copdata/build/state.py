"""What a build keeps between runs: per-item state files, ``dataset.json``'s
settings (compared on resume) and the accepted-clip count (``--target-hours``)."""

from __future__ import annotations

import json
from pathlib import Path


from ..dataset.rows import ClipRow


STATE_DIR = ".state"


def rejected_rows(state: dict) -> list[dict]:
    """``report.json`` rows (status ``rejected``) for an item's clips that failed
    the QA thresholds, with the reasons and the measured signals."""
    return [{"source_id": state["source_id"], "source": state.get("source"),
             "clip_id": r["clip_id"], "segment": r["segment"], "status": "rejected",
             "error_class": "QualityRejected", "message": "; ".join(r["reasons"]), "qa": r["qa"]}
            for r in state.get("rejected", [])]


def clip_accepted(row: ClipRow) -> bool:
    """Whether a written clip counts as accepted (toward ``--target-hours``).

    The one place that decides it: a clip in an item's rows is accepted unless
    a QA stage marked it rejected (its ``qa`` object has ``"passed": false``
    or ``"accepted": false``). Clips a QA stage drops are not in the rows at
    all and so never count.
    """
    qa = row.extra.get("qa")
    if isinstance(qa, dict):
        return qa.get("passed", True) is not False and qa.get("accepted", True) is not False
    return True


def accepted_seconds(state: dict) -> float:
    """Seconds of accepted clips of one finished item (its report/state row)."""
    if state.get("status") != "ok":
        return 0.0
    return sum(r.seconds for r in map(ClipRow.from_dict, state.get("rows", []))
               if clip_accepted(r))


# Provenance that a resumed build may change without changing the output.
_IGNORED_ON_RESUME = ("copdata_version",)
_IGNORED_SOURCE_KEYS_ON_RESUME = ("downloader",)


def output_settings(info: dict) -> dict:
    info = json.loads(json.dumps(info))  # as stored: tuples become lists
    out = {k: v for k, v in info.items() if k not in _IGNORED_ON_RESUME}
    if isinstance(out.get("source"), dict):
        out["source"] = {k: v for k, v in out["source"].items()
                         if k not in _IGNORED_SOURCE_KEYS_ON_RESUME}
    return out


def state_path(out_dir: Path, source_id: str) -> Path:
    return out_dir / STATE_DIR / f"{source_id}.json"
