"""Ratings files of a listening study: reading, validation against the study, screening.

A ratings file (written by the study page) is checked against the study key:
format, ``study_id`` and ``study_hash`` equal to the study's, every rated
stimulus one of the study's test trials, no trial rated twice, ratings
integers 1..5 for both questions, every rated trial played at least once.
A file failing a check is *rejected* as a whole (with the reason); two files
of the same rater id are an error.

Screening rule (applied to valid files; a screened rater's ratings are not
used and the rater is listed in the results):

1. ``incomplete``: the rater did not rate every test trial (unless
   ``allow_incomplete``);
2. ``reference_below_anchor``: over every clip and question where the rater
   rated both the hidden reference and the low anchor, the reference got the
   lower rating in more than ``max_reference_below_anchor`` (default 20%) of
   the pairs: an inattentive or inverted rater (ITU-T P.808's trapping idea
   with the study's own stimuli);
3. ``straight_lining``: one question got the same rating on every test trial.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BenchError
from .listen.study import StudyKey

QUESTIONS = ("quality", "match")
MAX_REFERENCE_BELOW_ANCHOR = 0.2


class RatingsError(BenchError):
    """A ratings file does not belong to the study or is malformed."""


@dataclass
class RaterRatings:
    rater_id: str
    path: str
    sha256: str
    ratings: dict[str, dict[str, int]]  # stimulus -> {"quality": k, "match": k}
    screened: list[str] = field(default_factory=list)  # reasons; empty = kept

    def to_dict(self) -> dict:
        return {"rater_id": self.rater_id, "path": self.path, "sha256": self.sha256,
                "n_ratings": len(self.ratings), "screened": self.screened}


def read_ratings(path: str | Path, key: StudyKey) -> RaterRatings:
    """Read and validate one ratings file against ``key``; raises :class:`RatingsError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RatingsError(f"not a readable JSON ratings file ({exc})", item=str(path)) from exc
    if not isinstance(doc, dict) or doc.get("format") != "copbench-ratings":
        raise RatingsError("not a copbench ratings file (format != 'copbench-ratings')",
                           item=str(path))
    if doc.get("study_hash") != key.study_hash or doc.get("study_id") != key.study_id:
        raise RatingsError(f"made for another study (id {doc.get('study_id')!r}, hash "
                           f"{str(doc.get('study_hash'))[:12]}; this study is {key.study_id!r}, "
                           f"{key.study_hash[:12]})", item=str(path))
    rater = doc.get("rater_id")
    if not isinstance(rater, str) or not rater.strip():
        raise RatingsError("no rater_id", item=str(path))
    trials = set(key.test_stimuli())
    out: dict[str, dict[str, int]] = {}
    rows = doc.get("ratings")
    if not isinstance(rows, list):
        raise RatingsError("'ratings' is not a list", item=str(path))
    for row in rows:
        stim = row.get("stimulus") if isinstance(row, dict) else None
        if stim not in trials:
            raise RatingsError(f"rates {stim!r}, which is not a test trial of this study",
                               item=str(path))
        if stim in out:
            raise RatingsError(f"rates trial {stim!r} twice", item=str(path))
        values = {}
        for q in QUESTIONS:
            v = row.get(q)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5:
                raise RatingsError(f"trial {stim!r}: {q} rating {v!r} is not an integer 1..5",
                                   item=str(path))
            values[q] = v
        plays = row.get("play_count")
        if not isinstance(plays, int) or plays < 1:
            raise RatingsError(f"trial {stim!r} was rated without being played "
                               f"(play_count {plays!r})", item=str(path))
        out[stim] = values
    return RaterRatings(rater.strip(), str(path), hashlib.sha256(raw).hexdigest(), out)


def screen(raters: list[RaterRatings], key: StudyKey, allow_incomplete: bool = False,
           max_reference_below_anchor: float = MAX_REFERENCE_BELOW_ANCHOR) -> None:
    """Fill each rater's ``screened`` reasons by the module's rule."""
    trials = key.test_stimuli()
    by_clip_role: dict[tuple[str, str], str] = {}
    for stim in trials:
        s = key.stimuli[stim]
        if s.role in ("reference", "anchor"):
            by_clip_role[(s.clip, s.role)] = stim
    clips = sorted({c for c, _ in by_clip_role})
    for rater in raters:
        reasons = []
        if not allow_incomplete and len(rater.ratings) < len(trials):
            reasons.append(f"incomplete ({len(rater.ratings)}/{len(trials)} trials)")
        pairs = below = 0
        for clip in clips:
            ref = rater.ratings.get(by_clip_role.get((clip, "reference"), ""))
            anc = rater.ratings.get(by_clip_role.get((clip, "anchor"), ""))
            if ref is None or anc is None:
                continue
            for q in QUESTIONS:
                pairs += 1
                below += ref[q] < anc[q]
        if pairs and below / pairs > max_reference_below_anchor:
            reasons.append(f"reference_below_anchor ({below}/{pairs} pairs)")
        for q in QUESTIONS:
            values = {r[q] for r in rater.ratings.values()}
            if len(rater.ratings) > 1 and len(values) == 1:
                reasons.append(f"straight_lining ({q} always {values.pop()})")
        rater.screened = reasons


def load_raters(paths: list[str | Path], key: StudyKey) -> tuple[list[RaterRatings], list[dict]]:
    """Valid raters and rejected files (``{"path", "error"}``); duplicate rater ids raise."""
    raters, rejected, seen = [], [], {}
    for path in paths:
        try:
            rater = read_ratings(path, key)
        except RatingsError as exc:
            rejected.append({"path": str(path), "error": str(exc)})
            continue
        if rater.rater_id in seen:
            raise RatingsError(f"rater id {rater.rater_id!r} appears in two files ({seen[rater.rater_id]} "
                               f"and {path}); remove one", item=str(path))
        seen[rater.rater_id] = str(path)
        raters.append(rater)
    return raters, rejected
