"""What to label next: the corpus paragraphs the model is least sure about, spread over languages and sources.

`python -m infer CORPUS --select-for-labeling N -o to_label.jsonl` tags the corpus as it streams and
keeps a bounded buffer of candidates (the `pool_factor * N` most uncertain so far, in a heap: memory
does not grow with the corpus), then picks N of them greedily:

- uncertainty u in [0, 1] = mean of the stance uncertainty (1 - (top probability - second probability))
  and the issue uncertainty (1 - the smallest distance of an issue score to its threshold, each
  distance scaled by how far that side of the threshold reaches: (t - s) / t below it, (s - t) / (1 - t)
  above);
- diversity: each pick divides a candidate's priority by (1 + paragraphs already picked in its language
  + paragraphs already picked from its source), so one language or one outlet does not fill the batch.
  Priorities only fall as picks accumulate, so a lazy heap gives the exact greedy order.

The output records are in the project's data format (`train.data`), ready for a person to check:
`id, text, lang, issues, stance` (the model's prediction, pre-filled), `origin: "reviewed"`, `source`
(the row's `source`/`url` field, else `<file>:<line>`), `group` (the row's `group`, else the id).
A side file `<output>.scores.jsonl` lists, per id, the uncertainty and the scores behind the pick.
Paragraphs whose text is already in the labeled data (`labeled_texts`) are skipped.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infer.atomic import atomic_file

logger = logging.getLogger(__name__)

POOL_FACTOR = 10


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


def uncertainty(pred, schema, thresholds: Sequence[float]) -> tuple[float, float, float]:
    """(u, stance uncertainty, issue uncertainty) of one `Prediction`; higher is less sure.

    Example:
        >>> from infer.labels import LabelSchema
        >>> from infer.prediction import Prediction
        >>> s = LabelSchema(issues=("a",), stance=("x", "y"))
        >>> uncertainty(Prediction("t", [], {"a": 0.5}, "x", {"x": 0.5, "y": 0.5}), s, [0.5])
        (1.0, 1.0, 1.0)
    """
    probs = sorted((pred.stance_scores[n] for n in schema.stance), reverse=True)
    stance_u = 1.0 - (probs[0] - probs[1])
    dist = []
    for name, t in zip(schema.issues, thresholds):
        s = pred.issue_scores[name]
        reach = t if s < t else 1.0 - t
        dist.append(min(abs(s - t) / reach, 1.0) if reach > 0 else 1.0)
    issue_u = 1.0 - min(dist)
    return 0.5 * (stance_u + issue_u), stance_u, issue_u


@dataclass(order=True)
class _Candidate:
    u: float
    seq: int
    record: dict[str, Any] = field(compare=False)
    why: dict[str, Any] = field(compare=False)


class LabelingSelector:
    """Streaming observer of `infer.stream.tag_stream`: keeps the most uncertain rows, then picks N.

    Args:
        n: how many paragraphs to select.
        schema, thresholds: the classifier's labels and (calibrated-score) issue thresholds.
        source_column: the row field naming the outlet/source for diversity (default: `source`, else `url`).
        labeled_texts: normalized texts already labeled (skipped).
        pool_factor: the buffer keeps `pool_factor * n` candidates.
    """

    def __init__(self, n: int, schema, thresholds: Sequence[float], source_column: str | None = None,
                 labeled_texts: set[str] | None = None, pool_factor: int = POOL_FACTOR):
        if n < 1:
            raise ValueError(f"--select-for-labeling needs N >= 1, got {n}")
        self.n, self.schema, self.thresholds = n, schema, np.asarray(thresholds, dtype=np.float64)
        self.source_column = source_column
        self.labeled = labeled_texts or set()
        self.capacity = pool_factor * n
        self._heap: list[_Candidate] = []  # min-heap on u: the root is the first to drop
        self._seen: set[str] = set()
        self.n_seen = self.n_skipped = 0

    def _source(self, where: str, row: dict[str, Any]) -> str:
        for key in ([self.source_column] if self.source_column else []) + ["source", "url"]:
            value = row.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return where

    def __call__(self, where: str, row: dict[str, Any], text: str, pred) -> None:
        """Offer one tagged row (`where` is its `file:line`)."""
        self.n_seen += 1
        key = _normalize(text)
        if key in self.labeled or key in self._seen:
            self.n_skipped += 1
            return
        u, stance_u, issue_u = uncertainty(pred, self.schema, self.thresholds)
        if len(self._heap) >= self.capacity and u <= self._heap[0].u:
            return
        row_id = row.get("id")
        rid = str(row_id) if row_id not in (None, "") else "rev-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
        source = self._source(where, row)
        group = row.get("group") if isinstance(row.get("group"), str) and row.get("group") else rid
        record = {"id": rid, "text": text, "lang": row.get("lang") or "", "issues": list(pred.issues),
                  "stance": pred.stance, "origin": "reviewed", "source": source, "group": group}
        why = {"id": rid, "uncertainty": round(u, 6), "stance_uncertainty": round(stance_u, 6),
               "issue_uncertainty": round(issue_u, 6), "issue_scores": pred.issue_scores,
               "stance_scores": pred.stance_scores, "where": where}
        self._seen.add(key)
        cand = _Candidate(u, self.n_seen, record, why)
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, cand)
        else:
            dropped = heapq.heapreplace(self._heap, cand)
            self._seen.discard(_normalize(dropped.record["text"]))

    def select(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The N picks in pick order: (record, why) pairs (see the module docstring for the rule)."""
        by_lang: dict[str, int] = {}
        by_source: dict[str, int] = {}
        groups: set[str] = set()
        # max-heap on the priority; a stored priority is an upper bound (counts only grow)
        heap = [(-c.u, -c.u, c.seq, c) for c in self._heap]
        heapq.heapify(heap)
        picks = []
        while heap and len(picks) < self.n:
            neg_stored, neg_u, seq, cand = heapq.heappop(heap)
            rec = cand.record
            if rec["group"] in groups:
                continue  # one paragraph of a group (its translations would say the same)
            priority = -neg_u / (1 + by_lang.get(rec["lang"], 0) + by_source.get(rec["source"], 0))
            if heap and priority < -heap[0][0] - 1e-12:
                heapq.heappush(heap, (-priority, neg_u, seq, cand))  # re-rank with its current priority
                continue
            picks.append((rec, {**cand.why, "priority": round(priority, 6), "rank": len(picks) + 1}))
            groups.add(rec["group"])
            by_lang[rec["lang"]] = by_lang.get(rec["lang"], 0) + 1
            by_source[rec["source"]] = by_source.get(rec["source"], 0) + 1
        logger.info("Selected %d of %d rows (%d kept as candidates, %d skipped as already labeled or repeated); "
                    "languages: %s", len(picks), self.n_seen, len(self._heap), self.n_skipped, by_lang)
        return picks


def labeled_texts(directory: str | Path) -> set[str]:
    """Normalized texts of every record in `directory/*.jsonl` (empty if the directory does not exist)."""
    out: set[str] = set()
    for path in sorted(Path(directory).glob("*.jsonl")) if Path(directory).is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.add(_normalize(json.loads(line)["text"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}: unreadable record while collecting labeled texts ({exc})") from exc
    return out


def write_selection(picks: list[tuple[dict[str, Any], dict[str, Any]]], out: str | Path) -> Path:
    """Write the records to `out` and the reasons to `<out>.scores.jsonl`, each atomically."""
    out = Path(out)
    with atomic_file(out) as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r, _ in picks)
    side = out.with_name(out.name + ".scores.jsonl")
    with atomic_file(side) as fh:
        fh.writelines(json.dumps(w, ensure_ascii=False) + "\n" for _, w in picks)
    return out


def run_selection(clf, rows, n: int, output: str, *, text_column: str = "text", group_by: str | None = None,
                  labeled_dir: str | None = None, num_shards: int = 1, shard_index: int = 0, batch_size: int = 16,
                  progress: bool = True) -> Path:
    """`--select-for-labeling N`: tag `rows` (the tags discarded), select the `n` paragraphs most worth labeling
    and write them to `output` (with the reasons beside it, `<output>.scores.jsonl`).

    Args:
        clf: the loaded `Classifier`.
        rows: `(where, row)` pairs from `infer.stream.read_rows`.
        group_by: row field naming the outlet, for a diverse selection.
        labeled_dir: skip paragraphs already labeled in this directory's JSON Lines files.

    Returns:
        The file written.
    """
    from infer.stream import tag_stream

    if output == "-":
        raise ValueError("--select-for-labeling writes records for review: give the file with -o to_label.jsonl")
    selector = LabelingSelector(n, clf.schema, clf.thresholds, source_column=group_by,
                                labeled_texts=labeled_texts(labeled_dir) if labeled_dir else None)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        tag_stream(clf, rows, sink, text_column=text_column, num_shards=num_shards, shard_index=shard_index,
                   batch_size=batch_size, progress=progress, observers=[selector])
    picks = selector.select()
    out = write_selection(picks, output)
    logger.info("Wrote %d paragraphs to label to %s (reasons in %s.scores.jsonl)", len(picks), output, output)
    return out
