"""The one exponential backoff with jitter used everywhere (supervisor restarts, reconnects, retries).

`delay = min(max_s, min_s * 2**attempt) * (1 + U[0, jitter))` -- DESIGN section 4. Jitter only ever
lengthens the wait, so `max_s * (1 + jitter)` is the true ceiling; callers size deadlines with that.
"""

from __future__ import annotations

import random

_RNG = random.Random()


def backoff_delay(
    attempt: int, *, min_s: float, max_s: float, jitter: float, rng: random.Random | None = None
) -> float:
    """The wait before retry number `attempt` (0 for the first retry)."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    # 2**attempt overflows floats past ~1024; the cap is reached long before.
    base = min(max_s, min_s * 2.0 ** min(attempt, 64))
    return base * (1.0 + (rng or _RNG).uniform(0.0, jitter))
