"""Ratings files of a listening study: reading, validation against the study, screening.

A ratings file (written by the study page) is checked against the study key:
format, ``study_id`` and ``study_hash`` equal to the study's, every rated
stimulus one of the study's test trials, no trial rated twice, ratings
integers 1..5 for both questions, every rated trial played at least once.
A rater id is 1-64 printable characters. Each rating must also be plausible:
``play_count`` a positive integer, ``listened_s`` at least 90% of the clip
(the page unlocks the answers only then) and no longer than the time the
trial was shown (``shown`` .. ``time``), trials in the order the page gives
that rater (:func:`copbench.listen.order.trial_order`), with times that never
go back. Two files with the same answers to every trial are rejected both
(copies under other rater ids). A file failing a check is *rejected* as a
whole (with the reason) and the others are aggregated; two files of the same
rater id are an error.

Screening rule (applied to valid files; a screened rater's ratings are not
used and the rater is listed in the results):

1. ``incomplete``: the rater did not rate every test trial (unless
   ``allow_incomplete``; even then a rater of fewer than half the trials, or
   of fewer than 2, is screened as ``too_few``);
2. ``reference_below_anchor``: over every clip and question where the rater
   rated both the hidden reference and the low anchor, the reference got the
   lower rating in more than ``max_reference_below_anchor`` (default 20%) of
   the pairs: an inattentive or inverted rater (ITU-T P.808's trapping idea
   with the study's own stimuli);
3. ``straight_lining``: one question got the same rating on every test trial.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BenchError
from .listen.order import trial_order
from .listen.study import StudyKey

QUESTIONS = ("quality", "match")
MAX_REFERENCE_BELOW_ANCHOR = 0.2
MIN_LISTENED = 0.9  # of the clip: the page unlocks the answers only then
TIME_SLACK_S = 2.0  # clock rounding between the page's timestamps and its media clock
_RATER_RE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,64}$")


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


def _time(value, what: str, path: Path) -> _dt.datetime:
    if not isinstance(value, str):
        raise RatingsError(f"{what} is not an ISO time ({value!r:.40})", item=str(path))
    try:
        t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RatingsError(f"{what} is not an ISO time ({value!r:.40})", item=str(path)) from None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def read_ratings(path: str | Path, key: StudyKey) -> RaterRatings:
    """Read and validate one ratings file against ``key``; raises :class:`RatingsError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RatingsError(f"not a readable JSON ratings file ({type(exc).__name__}: "
                           f"{str(exc)[:120]})", item=str(path)) from None
    if not isinstance(doc, dict) or doc.get("format") != "copbench-ratings":
        raise RatingsError("not a copbench ratings file (format != 'copbench-ratings')",
                           item=str(path))
    if doc.get("study_hash") != key.study_hash or doc.get("study_id") != key.study_id:
        raise RatingsError(f"made for another study (id {doc.get('study_id')!r:.80}, hash "
                           f"{str(doc.get('study_hash'))[:12]!r}; this study is {key.study_id!r}, "
                           f"{key.study_hash[:12]})", item=str(path))
    rater = doc.get("rater_id")
    if not isinstance(rater, str) or not rater.strip() or not _RATER_RE.match(rater.strip()):
        raise RatingsError(f"rater_id {rater!r:.80} is not 1-64 printable characters",
                           item=str(path))
    rater = rater.strip()
    trials = set(key.test_stimuli())
    order = trial_order(key.test_stimuli(), key.spec["order_seed"], rater)
    clip_seconds = key.settings.get("clip_seconds")
    min_listened = MIN_LISTENED * float(clip_seconds) if clip_seconds else 0.0
    out: dict[str, dict[str, int]] = {}
    rows = doc.get("ratings")
    if not isinstance(rows, list):
        raise RatingsError("'ratings' is not a list", item=str(path))
    last = None
    for pos, row in enumerate(rows):
        stim = row.get("stimulus") if isinstance(row, dict) else None
        if not isinstance(stim, str) or stim not in trials:
            raise RatingsError(f"rates {stim!r:.80}, which is not a test trial of this study",
                               item=str(path))
        if stim in out:
            raise RatingsError(f"rates trial {stim!r} twice", item=str(path))
        if pos >= len(order) or order[pos] != stim or row.get("trial") != pos + 1:
            raise RatingsError(f"trial {pos + 1} is {stim!r}, not the trial the page shows rater "
                               f"{rater!r} at that position (out of order or edited)",
                               item=str(path))
        values = {}
        for q in QUESTIONS:
            v = row.get(q)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5:
                raise RatingsError(f"trial {stim!r}: {q} rating {v!r:.40} is not an integer 1..5",
                                   item=str(path))
            values[q] = v
        plays = row.get("play_count")
        if not isinstance(plays, int) or isinstance(plays, bool) or plays < 1:
            raise RatingsError(f"trial {stim!r} was rated without being played "
                               f"(play_count {plays!r:.40})", item=str(path))
        listened = row.get("listened_s")
        if (not isinstance(listened, (int, float)) or isinstance(listened, bool)
                or not math.isfinite(listened) or listened <= 0 or listened < min_listened):
            raise RatingsError(f"trial {stim!r}: listened_s {listened!r:.40} is not a plausible "
                               f"listening time (at least {min_listened:g} s: the page unlocks "
                               "the answers only after the clip was played)", item=str(path))
        shown, answered = _time(row.get("shown"), "shown", path), _time(row.get("time"), "time", path)
        if (answered - shown).total_seconds() + TIME_SLACK_S < listened:
            raise RatingsError(f"trial {stim!r}: {listened:g} s listened in "
                               f"{(answered - shown).total_seconds():g} s on screen (impossible)",
                               item=str(path))
        if last is not None and shown < last:
            raise RatingsError(f"trial {stim!r} was shown before the previous one was answered "
                               "(times go back)", item=str(path))
        last = answered
        out[stim] = values
    return RaterRatings(rater, str(path), hashlib.sha256(raw).hexdigest(), out)


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
        elif len(rater.ratings) < max(2, math.ceil(len(trials) / 2)):
            reasons.append(f"too_few ({len(rater.ratings)}/{len(trials)} trials; at least half "
                           "are needed)")
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


def _answers(rater: RaterRatings) -> tuple:
    return tuple(sorted((stim, tuple(v[q] for q in QUESTIONS))
                        for stim, v in rater.ratings.items()))


def load_raters(paths: list[str | Path], key: StudyKey) -> tuple[list[RaterRatings], list[dict]]:
    """Valid raters and rejected files (``{"path", "error"}``); duplicate rater ids
    raise. Files with the same answers to every trial are all rejected."""
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
    groups: dict[tuple, list[RaterRatings]] = {}
    for rater in raters:
        if len(rater.ratings) > 1:
            groups.setdefault(_answers(rater), []).append(rater)
    copies = {id(r) for group in groups.values() if len(group) > 1 for r in group}
    for group in groups.values():
        if len(group) > 1:
            for r in group:
                others = ", ".join(o.path for o in group if o is not r)
                rejected.append({"path": r.path, "error": f"{r.path}: the same answers to all "
                                 f"{len(r.ratings)} trials as {others} (a copy under another "
                                 "rater id?); all copies are rejected"})
    return [r for r in raters if id(r) not in copies], rejected
