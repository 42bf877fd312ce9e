"""Score calibration stored in a checkpoint's `config.json`, applied to the logits before scoring.

Training (`train.calibrate`) fits, on the validation split:
    stance_temperature   T > 0: stance probabilities are softmax(logits / T).
    issue_calibration    {issue: {"scale": a, "bias": b}} (Platt scaling, a > 0): the issue score is
                         sigmoid(a * logit + b). Only issues for which it lowered held-out NLL are listed;
                         the others keep the plain sigmoid.

Both are extra config keys, not layers: a plain `pipeline()` still loads the checkpoint and returns the
uncalibrated scores. `config.json`'s `issue_thresholds` stay on the uncalibrated sigmoid (what a plain
pipeline returns); because every Platt map here is strictly increasing, `issue_thresholds` maps each
threshold through the same map, and decisions made on calibrated scores are the same as on raw ones.
Numpy only: nothing here is needed at training time that `infer` does not already have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

_EPS = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibration:
    """A stance temperature and per-issue Platt maps (identity by default).

    Example:
        >>> import numpy as np
        >>> cal = Calibration(stance_temperature=2.0, issue_calibration={"a": {"scale": 1.0, "bias": 1.0}})
        >>> cal.apply(np.array([[0.0, 2.0, 0.0]]), issues=("a",), num_issues=1).tolist()
        [[1.0, 1.0, 0.0]]
    """

    stance_temperature: float = 1.0
    issue_calibration: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.stance_temperature) and self.stance_temperature > 0):
            raise ValueError(f"config.json stance_temperature must be a positive number, got {self.stance_temperature!r}")
        for name, params in self.issue_calibration.items():
            if not isinstance(params, dict) or set(params) != {"scale", "bias"}:
                raise ValueError(f"config.json issue_calibration[{name!r}] must be {{'scale': a, 'bias': b}}, got {params!r}")
            if not (np.isfinite(params["scale"]) and params["scale"] > 0 and np.isfinite(params["bias"])):
                raise ValueError(f"config.json issue_calibration[{name!r}]: scale must be > 0 and both finite, "
                                 f"got {params!r}")

    @property
    def is_identity(self) -> bool:
        return self.stance_temperature == 1.0 and not self.issue_calibration

    @classmethod
    def from_model_config(cls, config: Any, issues: Sequence[str]) -> Calibration:
        """Read `stance_temperature` / `issue_calibration` from a model config (absent: identity)."""
        temperature = getattr(config, "stance_temperature", None)
        issue_cal = getattr(config, "issue_calibration", None) or {}
        unknown = sorted(set(issue_cal) - set(issues))
        if unknown:
            raise ValueError(f"config.json issue_calibration names unknown issue(s) {unknown}; the schema has {list(issues)}")
        return cls(float(temperature) if temperature is not None else 1.0,
                   {n: {"scale": float(p["scale"]), "bias": float(p["bias"])} if isinstance(p, dict) else p
                    for n, p in issue_cal.items()})

    def to_config(self) -> dict[str, Any]:
        """The keys to set on a model config (`config.json`)."""
        return {"stance_temperature": float(self.stance_temperature),
                "issue_calibration": {n: dict(p) for n, p in self.issue_calibration.items()}}

    def apply(self, logits: np.ndarray, issues: Sequence[str], num_issues: int) -> np.ndarray:
        """Calibrated logits (n, num_labels): issue columns through their Platt map, stance divided by T."""
        out = np.array(logits, dtype=np.float64, copy=True)
        for j, name in enumerate(issues[:num_issues]):
            params = self.issue_calibration.get(name)
            if params:
                out[:, j] = params["scale"] * out[:, j] + params["bias"]
        out[:, num_issues:] /= self.stance_temperature
        return out

    def issue_thresholds(self, thresholds: Sequence[float], issues: Sequence[str]) -> np.ndarray:
        """Thresholds on uncalibrated sigmoid scores -> the same cuts on calibrated scores.

        Example:
            >>> Calibration(issue_calibration={"a": {"scale": 2.0, "bias": 0.0}}).issue_thresholds([0.5, 0.3], ["a", "b"])
            array([0.5, 0.3])
        """
        out = np.asarray(thresholds, dtype=np.float64).copy()
        for j, name in enumerate(issues):
            params = self.issue_calibration.get(name)
            if params and 0.0 < out[j] < 1.0:
                z = params["scale"] * _logit(out[j]) + params["bias"]
                out[j] = 1.0 / (1.0 + np.exp(-z))
        return out
