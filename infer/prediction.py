"""Result types: one `Prediction` per paragraph, one `DocumentPrediction` per document."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prediction:
    """Labels and scores for one text.

    Attributes:
        text: the input text.
        issues: issue labels whose score reached the checkpoint's tuned threshold, in schema order.
        issue_scores: sigmoid score of every issue label.
        stance: the stance label with the highest probability.
        stance_scores: softmax probability of every stance label (they sum to 1).
        windows: how many model windows the text needed (1 unless it exceeded the model's max length).
        evidence: only with `classify(..., explain=True)`: the sentence(s) whose removal lowers the score
            of the predicted stance and of each predicted issue most, with that change (`infer.evidence`).

    Example:
        >>> p = Prediction("t", ["sanctions"], {"sanctions": 0.9}, "against", {"against": 1.0})
        >>> p.to_dict()["stance"]
        'against'
    """

    text: str
    issues: list[str]
    issue_scores: dict[str, float]
    stance: str
    stance_scores: dict[str, float]
    windows: int = 1
    evidence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict (plain str, float, list); `evidence` only when it was asked for."""
        out = asdict(self)
        if out["evidence"] is None:
            del out["evidence"]
        return out


@dataclass(frozen=True)
class DocumentPrediction:
    """A document's paragraphs, each classified, and their aggregate.

    Attributes:
        issues: issues found in any paragraph (document issue score = max over paragraphs).
        issue_scores: max paragraph score per issue.
        stance: the most frequent paragraph stance (ties broken by summed probability).
        stance_distribution: share of paragraphs per stance label.
        paragraphs: the per-paragraph predictions, in document order.
    """

    issues: list[str]
    issue_scores: dict[str, float]
    stance: str
    stance_distribution: dict[str, float]
    paragraphs: list[Prediction] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
