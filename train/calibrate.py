"""Fit score calibration on validation logits, and measure calibration (NLL, ECE, reliability diagram).

`fit_calibration` is called by `train.run` right after the issue thresholds are tuned, on the same
validation logits (issues first, then stance). It fits

- a stance temperature T (softmax(logits / T)) by minimizing the stance NLL over log T, bounded;
- per issue, Platt scaling sigmoid(a * logit + b) by minimizing the binary NLL (L-BFGS-B, a > 0);

and keeps each map only where it lowers the NLL on held-out validation folds (grouped K-fold over
the validation split: a map fitted on some paragraph groups must help on the others). In-sample NLL
always drops when a parameter is added, so it cannot decide. Kept maps are then refitted on the
whole validation split and stored in `config.json` (`infer.calibration.Calibration`).

The issue thresholds stay on the uncalibrated sigmoid; `infer` maps them through the same strictly
increasing Platt map, so issue decisions do not change.

ECE (expected calibration error, 10 equal-width bins): for stance, the top-label confidence against
"the top label is right"; for issues, every (paragraph, issue) score against its 0/1 gold, pooled over
the issues. The evaluation report shows both before (temperature 1, no Platt map) and after.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infer.calibration import Calibration
from infer.labels import LabelSchema

logger = logging.getLogger(__name__)

N_BINS = 10
_EPS = 1e-12


# -- losses ----------------------------------------------------------------------------------------

def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def stance_nll(logits: np.ndarray, gold: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold class indices `gold` (n,) under softmax(logits / T)."""
    logp = _log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-logp[np.arange(len(gold)), np.asarray(gold, dtype=int)].mean())


def binary_nll(logit: np.ndarray, y: np.ndarray, scale: float = 1.0, bias: float = 0.0) -> float:
    """Mean binary cross-entropy of 0/1 `y` under sigmoid(scale * logit + bias)."""
    z = scale * np.asarray(logit, dtype=np.float64) + bias
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))  # log(1 + e^z) - y z, stable


# -- fitting ---------------------------------------------------------------------------------------

def fit_temperature(logits: np.ndarray, gold: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature T in `bounds` minimizing the stance NLL (a bounded 1-D search over log T).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 500)
        >>> logits = rng.normal(size=(500, 3)); logits[np.arange(500), y] += 1.0
        >>> 2.0 < fit_temperature(logits * 4, y) / fit_temperature(logits, y) < 6.0  # 4x too sharp -> 4x T
        True
    """
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda log_t: stance_nll(logits, gold, float(np.exp(log_t))),
                          bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def fit_platt(logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(scale, bias) of sigmoid(scale * logit + bias) minimizing the binary NLL; scale kept in [1e-3, 100]."""
    from scipy.optimize import minimize

    x = np.asarray(logit, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        z = a * x + b
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        return float(loss), np.array([np.mean((p - y) * x), np.mean(p - y)])

    res = minimize(loss_and_grad, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                   bounds=[(1e-3, 100.0), (-50.0, 50.0)])
    return float(res.x[0]), float(res.x[1])


def _folds(n: int, groups: Sequence[str] | None, k: int, seed: int = 0) -> list[np.ndarray]:
    """Held-out index sets of a (grouped) K-fold; a group's records stay in one fold."""
    keys = np.asarray(groups) if groups is not None else np.arange(n).astype(str)
    unique = np.unique(keys)
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(unique), np.arange(len(unique)) % k))
    assign = np.array([fold_of[g] for g in keys])
    return [np.flatnonzero(assign == f) for f in range(k) if (assign == f).any()]


def fit_calibration(logits: np.ndarray, labels: np.ndarray, schema: LabelSchema,
                    groups: Sequence[str] | None = None, folds: int = 5) -> tuple[Calibration, dict[str, Any]]:
    """Fit a stance temperature and per-issue Platt maps on validation logits; keep those that help.

    Args:
        logits: (n, num_labels) raw head outputs, issues first then stance (the Trainer's predictions).
        labels: (n, num_labels) multi-hot issues then one-hot stance (`train.data.encode_labels`).
        schema: the label schema of the head.
        groups: per-record paragraph group (translations of one paragraph share it) for the held-out folds.
        folds: number of held-out folds deciding whether a map is kept.

    Returns:
        (calibration, info): `info` has, per map, the validation NLL before/after (in-sample), the
        held-out NLL before/after, the fitted parameters and whether they were kept.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    k = len(schema.issues)
    split = _folds(len(logits), groups, folds) if len(logits) >= 2 * folds else []
    stance_logits, gold = logits[:, k:], labels[:, k:].argmax(1)

    def held_out(fit, nll_raw, nll_fit) -> tuple[float, float]:
        """Summed NLL over held-out folds: raw vs the map fitted on the other folds."""
        before = after = 0.0
        for test in split:
            train = np.setdiff1d(np.arange(len(logits)), test)
            params = fit(train)
            before += nll_raw(test) * len(test)
            after += nll_fit(test, params) * len(test)
        return before / len(logits), after / len(logits)

    info: dict[str, Any] = {"n": len(logits), "folds": len(split)}
    t = fit_temperature(stance_logits, gold)
    cv = held_out(lambda tr: fit_temperature(stance_logits[tr], gold[tr]),
                  lambda te: stance_nll(stance_logits[te], gold[te]),
                  lambda te, tt: stance_nll(stance_logits[te], gold[te], tt)) if split else (np.nan, np.nan)
    keep_t = bool(split) and cv[1] < cv[0]
    info["stance"] = {"temperature": round(t, 4), "kept": keep_t,
                      "nll_before": stance_nll(stance_logits, gold), "nll_after": stance_nll(stance_logits, gold, t),
                      "heldout_nll_before": cv[0], "heldout_nll_after": cv[1]}
    issue_maps: dict[str, dict[str, float]] = {}
    info["issues"] = {}
    for j, name in enumerate(schema.issues):
        x, y = logits[:, j], labels[:, j]
        if y.min() == y.max():  # no positive (or no negative): nothing to calibrate against
            info["issues"][name] = {"kept": False, "reason": "one class only in validation"}
            continue
        a, b = fit_platt(x, y)
        cv = held_out(lambda tr: fit_platt(x[tr], y[tr]), lambda te: binary_nll(x[te], y[te]),
                      lambda te, ab: binary_nll(x[te], y[te], *ab)) if split else (np.nan, np.nan)
        keep = bool(split) and cv[1] < cv[0]
        if keep:
            issue_maps[name] = {"scale": round(a, 6), "bias": round(b, 6)}
        info["issues"][name] = {"scale": round(a, 6), "bias": round(b, 6), "kept": keep,
                                "nll_before": binary_nll(x, y), "nll_after": binary_nll(x, y, a, b),
                                "heldout_nll_before": cv[0], "heldout_nll_after": cv[1]}
    calibration = Calibration(round(t, 4) if keep_t else 1.0, issue_maps)
    logger.info("Calibration (validation, %d records, %d held-out folds): stance T=%.3f %s (held-out NLL %.4f -> %.4f); "
                "Platt maps kept for %s", len(logits), len(split), t, "kept" if keep_t else "not kept",
                info["stance"]["heldout_nll_before"], info["stance"]["heldout_nll_after"], sorted(issue_maps) or "none")
    return calibration, info


# -- measuring -------------------------------------------------------------------------------------

def reliability(confidence: np.ndarray, outcome: np.ndarray, bins: int = N_BINS) -> dict[str, list]:
    """Equal-width bins over [0, 1]: count, mean confidence and observed frequency per bin."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    outcome = np.asarray(outcome, dtype=np.float64).ravel()
    idx = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(idx, minlength=bins)
    conf = np.bincount(idx, weights=confidence, minlength=bins)
    hits = np.bincount(idx, weights=outcome, minlength=bins)
    safe = np.maximum(count, 1)
    return {"count": count.tolist(), "confidence": (conf / safe).round(6).tolist(),
            "frequency": (hits / safe).round(6).tolist()}


def ece(confidence: np.ndarray, outcome: np.ndarray, bins: int = N_BINS) -> float:
    """Expected calibration error: sum over bins of (bin share) * |frequency - mean confidence|.

    Example:
        >>> ece(np.array([0.9, 0.9, 0.9, 0.9]), np.array([1, 1, 1, 0]))  # says 0.9, right 0.75
        0.15
    """
    r = reliability(confidence, outcome, bins)
    n = max(sum(r["count"]), 1)
    return round(float(sum(c / n * abs(f - m) for c, f, m in zip(r["count"], r["frequency"], r["confidence"]))), 6)


def calibration_block(scores: np.ndarray, gold: np.ndarray, schema: LabelSchema) -> dict[str, Any]:
    """ECE and reliability bins of one set of scores (n, num_labels) against gold (n, num_labels)."""
    k = len(schema.issues)
    stance, issues = scores[:, k:], scores[:, :k]
    top = stance.max(1)
    correct = stance.argmax(1) == gold[:, k:].argmax(1)
    return {
        "stance": {"ece": ece(top, correct), "reliability": reliability(top, correct)},
        "issues": {"ece": ece(issues, gold[:, :k]), "reliability": reliability(issues, gold[:, :k])},
    }


def calibration_report(raw_scores: np.ndarray, scores: np.ndarray, gold: np.ndarray, schema: LabelSchema,
                       calibration: Calibration) -> dict[str, Any]:
    """The report's `calibration` section: before (temperature 1, no Platt map) and after."""
    return {"stance_temperature": calibration.stance_temperature,
            "issue_calibration": calibration.issue_calibration,
            "before": calibration_block(np.asarray(raw_scores), np.asarray(gold), schema),
            "after": calibration_block(np.asarray(scores), np.asarray(gold), schema)}


def write_reliability_diagram(section: dict[str, Any], path: Path, title: str = "") -> Path:
    """Reliability diagram PNG (stance top-label and issues pooled; before and after calibration)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the reliability diagram needs matplotlib: pip install "
                          "'security-talks-classifier[report]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, group, label in ((axes[0], "stance", "stance (top-label confidence)"),
                             (axes[1], "issues", "issues (every label, pooled)")):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        for when, style in (("before", "o-"), ("after", "s-")):
            r = section[when][group]["reliability"]
            keep = [i for i, c in enumerate(r["count"]) if c]
            ax.plot([r["confidence"][i] for i in keep], [r["frequency"][i] for i in keep], style,
                    label=f"{when} (ECE {section[when][group]['ece']:.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted probability (bin mean)")
        ax.set_ylabel("observed frequency")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title or f"Reliability (T = {section['stance_temperature']:.2f})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_calibration_markdown(section: dict[str, Any], plot: str = "reliability.png") -> list[str]:
    """Markdown lines: ECE before/after per group, and the maps applied."""
    maps = ", ".join(f"{n} (a={p['scale']:.2f}, b={p['bias']:+.2f})" for n, p in section["issue_calibration"].items())
    lines = ["## Calibration", "",
             f"Stance temperature {section['stance_temperature']:.3f}; issue Platt maps: {maps or 'none'} "
             f"(fitted on validation, kept only where they lowered held-out NLL). ECE, {N_BINS} bins; "
             "stance: top-label confidence; issues: every (paragraph, issue) score, pooled. "
             f"Plot: `{plot}`.", "",
             "| group | ECE before | ECE after |", "|---|---|---|"]
    for group in ("stance", "issues"):
        lines.append(f"| {group} | {section['before'][group]['ece']:.3f} | {section['after'][group]['ece']:.3f} |")
    return lines + [""]
