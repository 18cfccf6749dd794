"""The XORJ Trust Score: the formula on its own (DESIGN section 7), V1 and V2.

Both versions weigh a Sharpe ratio (0.40), ROI (0.15) and a drawdown penalty (0.45) on fixed-range
normalisers, `score = max(0, 0.40*nS + 0.15*nR - 0.45*nD) * 100` with
`nS = clamp((sharpe + 2) / 5)`, `nR = clamp(roi_pct / 500)`, `nD = clamp(max_drawdown_pct / 100)`.

- V1 estimates the Sharpe ratio from the summary figures, as the seed did:
  `sharpe = (roi_pct / trades) / sqrt(max_drawdown_pct / 100)`, 0 when the drawdown (or the trade
  count) is 0.
- V2 takes the real Sharpe ratio of the wallet's per-trade return series.

Pure functions of numbers: the scorer, `xorj score` and the tests share them.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import attrs

W_SHARPE, W_ROI, W_DRAWDOWN = 0.40, 0.15, 0.45


class Algorithm(enum.Enum):
    V1 = "v1"
    V2 = "v2"


def clamp(x: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, x))


@attrs.frozen
class TrustScore:
    score: float
    algorithm: Algorithm
    sharpe: float
    normalized_sharpe: float
    normalized_roi: float
    normalized_drawdown: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "algorithm": self.algorithm.value,
            "components": {
                "sharpe": round(self.sharpe, 6),
                "normalized_sharpe": round(self.normalized_sharpe, 6),
                "normalized_roi": round(self.normalized_roi, 6),
                "normalized_drawdown": round(self.normalized_drawdown, 6),
                "weighted_sharpe": round(W_SHARPE * self.normalized_sharpe, 6),
                "weighted_roi": round(W_ROI * self.normalized_roi, 6),
                "drawdown_penalty": round(W_DRAWDOWN * self.normalized_drawdown, 6),
            },
        }


def _check(roi_pct: float, max_drawdown_pct: float) -> None:
    if not math.isfinite(roi_pct):
        raise ValueError(f"roi_pct must be a finite number, got {roi_pct}")
    if not (math.isfinite(max_drawdown_pct) and 0.0 <= max_drawdown_pct):
        raise ValueError(f"max_drawdown_pct must be >= 0, got {max_drawdown_pct}")


def v1_sharpe(roi_pct: float, max_drawdown_pct: float, trades: int) -> float:
    """The seed's Sharpe estimate from summary figures."""
    if trades <= 0 or max_drawdown_pct <= 0:
        return 0.0
    return (roi_pct / trades) / math.sqrt(max_drawdown_pct / 100.0)


def combine(sharpe: float, roi_pct: float, max_drawdown_pct: float, algorithm: Algorithm) -> TrustScore:
    _check(roi_pct, max_drawdown_pct)
    if not math.isfinite(sharpe):
        sharpe = 0.0  # a return series without variance has no meaningful Sharpe ratio
    n_s = clamp((sharpe + 2.0) / 5.0)
    n_r = clamp(roi_pct / 500.0)
    n_d = clamp(max_drawdown_pct / 100.0)
    raw = W_SHARPE * n_s + W_ROI * n_r - W_DRAWDOWN * n_d
    return TrustScore(max(0.0, raw) * 100.0, algorithm, sharpe, n_s, n_r, n_d)


def score_v1(roi_pct: float, max_drawdown_pct: float, trades: int) -> TrustScore:
    if trades < 0:
        raise ValueError(f"trades must be >= 0, got {trades}")
    return combine(v1_sharpe(roi_pct, max_drawdown_pct, trades), roi_pct, max_drawdown_pct, Algorithm.V1)


def score_v2(sharpe: float, roi_pct: float, max_drawdown_pct: float) -> TrustScore:
    return combine(sharpe, roi_pct, max_drawdown_pct, Algorithm.V2)
