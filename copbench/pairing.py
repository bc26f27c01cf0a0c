"""Strict pairing of outputs with references by clip id.

A reference clip without an output is *missing*; an output without a clip in
the chosen split is *extra*. Both are reported (results JSON and screen) and
never substituted; metrics run over the paired clips only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PairingError


@dataclass(frozen=True)
class Pairing:
    paired: list[str]
    missing: list[str]
    extra: list[str]

    def to_json(self) -> dict:
        return {"paired": len(self.paired), "missing": self.missing, "extra": self.extra}


def pair_ids(reference_ids, output_ids: set[str] | None) -> Pairing:
    """Pair sorted reference ids with the ids a source can produce (None: all)."""
    refs = sorted(set(reference_ids))
    if output_ids is None:
        return Pairing(refs, [], [])
    outs = set(output_ids)
    paired = [i for i in refs if i in outs]
    missing = [i for i in refs if i not in outs]
    extra = sorted(outs.difference(refs))
    if not paired:
        raise PairingError(f"no output matches a reference clip id ({len(missing)} missing, "
                           f"{len(extra)} extra, e.g. {extra[:3]}); outputs must be named "
                           "<clip_id>.wav or <clip_id>.flac", item="pairing")
    return Pairing(paired, missing, extra)
