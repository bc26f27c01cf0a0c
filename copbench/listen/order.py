"""The per-rater trial order of a study page, in Python.

The page permutes its trial list (sorted by stimulus id) with a Fisher-Yates
shuffle driven by mulberry32, seeded by the 32-bit FNV-1a hash of the UTF-8
text ``"<order_seed>:<rater id>"``. :func:`trial_order` computes the same
order, so an analysis can re-create what each rater saw (position effects)
and a test can check the page against it.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF


def fnv1a(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & MASK
    return h


def _imul(a: int, b: int) -> int:
    return (a * b) & MASK


def mulberry32(seed: int):
    state = [seed & MASK]

    def rand() -> float:
        state[0] = (state[0] + 0x6D2B79F5) & MASK
        t = state[0]
        t = _imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + _imul(t ^ (t >> 7), t | 61)) & MASK)) & MASK
        return ((t ^ (t >> 14)) & MASK) / 4294967296.0
    return rand


def trial_order(stimuli: list[str], order_seed: int, rater_id: str) -> list[str]:
    """``stimuli`` (the page's trial list order) as rater ``rater_id`` sees them."""
    out = list(stimuli)
    rand = mulberry32(fnv1a(f"{order_seed}:{rater_id}"))
    for i in range(len(out) - 1, 0, -1):
        j = int(rand() * (i + 1))
        out[i], out[j] = out[j], out[i]
    return out
