"""Retry delays: the full-jitter bound that the default backoff policy and ``Job`` share."""

from __future__ import annotations

import random

__all__ = ["exponential_bound", "full_jitter"]


def exponential_bound(attempt: int, base: float, cap: float) -> float:
    """``min(cap, base * 2 ** attempt)``, with the exponent capped so it never overflows."""
    return float(min(cap, base * (2.0 ** min(attempt, 64))))


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """``uniform(0, min(cap, base * 2 ** attempt))`` (AWS "full jitter")."""
    return (rng or random).uniform(0.0, exponential_bound(attempt, base, cap))
