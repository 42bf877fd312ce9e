"""Streaming readers and the tagging loop behind `python -m infer`.

Inputs are read lazily (one paragraph a line, JSON Lines, CSV or Parquet), sharded by row number
(`row % num_shards == shard_index`: disjoint and complete across shards), classified in chunks and
written as they go, so memory stays constant whatever the input size.
"""

from __future__ import annotations

import collections
import csv
import itertools
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator, Sequence, TextIO

if TYPE_CHECKING:  # a type hint only: reading files needs no torch
    from infer.classifier import Classifier

logger = logging.getLogger(__name__)

FORMATS = ("auto", "lines", "jsonl", "csv", "parquet")


def detect_format(path: str, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(suffix, "lines")


def read_rows(path: str, fmt: str, text_column: str = "text") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (where, row) with row[text_column] holding the text; `where` is `file:line` or `file:row`."""
    name = "<stdin>" if path == "-" else path
    if fmt == "parquet":
        import pyarrow.parquet as pq

        row_no = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            if text_column not in batch.schema.names:
                raise ValueError(f"{name}: no column {text_column!r}; columns: {batch.schema.names} (use --text-column)")
            for row in batch.to_pylist():
                row_no += 1
                yield f"{name}:row {row_no}", row
        return
    handle: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")
    lines = decoded_lines(handle, name)
    try:
        if fmt == "csv":
            reader = csv.DictReader(lines)
            if reader.fieldnames is None or text_column not in reader.fieldnames:
                raise ValueError(f"{name}: no column {text_column!r}; columns: {reader.fieldnames} (use --text-column)")
            for row in reader:
                yield f"{name}:{reader.line_num}", row
            return
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if fmt == "jsonl":
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{name}:{lineno}: invalid JSON: {exc.msg}") from exc
                if not isinstance(row, dict) or text_column not in row:
                    raise ValueError(f"{name}:{lineno}: expected an object with a {text_column!r} field")
                yield f"{name}:{lineno}", row
            else:
                yield f"{name}:{lineno}", {text_column: line.rstrip("\r\n")}
    finally:
        if path != "-":
            handle.close()


def decoded_lines(handle: BinaryIO, name: str, error: type[ValueError] = ValueError) -> Iterator[str]:
    """UTF-8 lines (newlines kept) of a binary handle; a line that is not UTF-8 raises `error` naming
    `name:line` and the byte offset, with a hint to convert the file."""
    offset = 0
    for lineno, raw in enumerate(handle, 1):
        try:
            yield raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                f"{name}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {offset + exc.start} "
                "of the file); is it binary? Convert text to UTF-8 first, e.g. `iconv -f latin1 -t utf-8 FILE`"
            ) from None
        offset += len(raw)


def _new_entry() -> dict[str, collections.Counter]:
    return {"n": collections.Counter(), "issues": collections.Counter(), "stance": collections.Counter()}


def _bump(entry: dict[str, collections.Counter], pred) -> None:
    entry["n"]["n"] += 1
    entry["n"]["no_issue"] += not pred.issues
    entry["issues"].update(pred.issues)
    entry["stance"][pred.stance] += 1


def require_fields(rows: Iterator[tuple[str, dict[str, Any]]], fields: dict[str, str | None]):
    """The same rows, after checking that the first one has every named field (`{flag: column}`, None: unused);
    raises ValueError naming the flag, the column, where, and the fields the row has.

    >>> rows = iter([("in.jsonl:1", {"text": "NATO", "outlet": "x"})])
    >>> list(require_fields(rows, {"--group-by": "outlet"}))
    [('in.jsonl:1', {'text': 'NATO', 'outlet': 'x'})]
    >>> require_fields(iter([("in.jsonl:1", {"text": "NATO"})]), {"--date-column": "date"})
    Traceback (most recent call last):
    ValueError: --date-column date: in.jsonl:1 has no field 'date'; its fields: ['text']
    """
    wanted = {flag: column for flag, column in fields.items() if column}
    if not wanted:
        return rows
    first = next(rows, None)
    if first is None:
        return iter(())
    where, row = first
    for flag, column in wanted.items():
        if column not in row:
            raise ValueError(f"{flag} {column}: {where} has no field {column!r}; its fields: {sorted(row)}")
    return itertools.chain([first], rows)


@dataclass
class Summary:
    """Counts of what was tagged, overall, by language (rows with `lang`), and optionally by a source column
    (`group_by`) and by week (`date_column`, ISO weeks starting on Monday), accumulated while streaming.
    """

    n: int = 0
    rows: int = 0  # rows written (paragraphs or documents)
    n_gold: int = 0  # rows that carry gold `issues` and `stance` fields
    issues: collections.Counter = field(default_factory=collections.Counter)
    stance: collections.Counter = field(default_factory=collections.Counter)
    by_lang: dict[str, dict[str, collections.Counter]] = field(default_factory=dict)
    group_by: str | None = None
    date_column: str | None = None
    by_group: dict[str, dict[str, collections.Counter]] = field(default_factory=dict)
    by_week: dict[str, dict[str, collections.Counter]] = field(default_factory=dict)
    undated: int = 0
    no_issue: int = 0

    def add(self, pred, lang: str | None, row: dict[str, Any] | None = None) -> None:
        self.n += 1
        self.no_issue += not pred.issues
        self.issues.update(pred.issues)
        self.stance[pred.stance] += 1
        if lang:
            _bump(self.by_lang.setdefault(lang, _new_entry()), pred)
        if row is None:
            return
        if self.group_by:
            value = row.get(self.group_by)
            _bump(self.by_group.setdefault(str(value) if value not in (None, "") else "(none)", _new_entry()), pred)
        if self.date_column:
            from infer.corpus_report import week_start

            week = week_start(row.get(self.date_column))
            if week is None:
                self.undated += 1
            else:
                _bump(self.by_week.setdefault(week, _new_entry()), pred)

    def to_dict(self, schema) -> dict[str, Any]:
        def shares(c: collections.Counter, n: int) -> dict[str, float]:
            return {s: round(c[s] / n, 4) if n else 0.0 for s in schema.stance}

        def block(e: dict[str, collections.Counter]) -> dict[str, Any]:
            n = e["n"]["n"]
            return {"n": n, "issue_counts": {i: e["issues"][i] for i in schema.issues},
                    "issue_shares": {i: round(e["issues"][i] / n, 4) if n else 0.0 for i in schema.issues},
                    "no_issue_share": round(e["n"]["no_issue"] / n, 4) if n else 0.0,
                    "stance_counts": {s: e["stance"][s] for s in schema.stance},
                    "stance_shares": shares(e["stance"], n)}

        out = {
            "n": self.n,
            "issue_counts": {i: self.issues[i] for i in schema.issues},
            "issue_shares": {i: round(self.issues[i] / self.n, 4) if self.n else 0.0 for i in schema.issues},
            "no_issue_share": round(self.no_issue / self.n, 4) if self.n else 0.0,
            "stance_counts": {s: self.stance[s] for s in schema.stance},
            "stance_shares": shares(self.stance, self.n),
            "by_lang": {lang: block(e) for lang, e in sorted(self.by_lang.items())},
        }
        if self.group_by:
            out["group_by"] = self.group_by
            out["by_group"] = {g: block(e) for g, e in sorted(self.by_group.items(), key=lambda kv: -kv[1]["n"]["n"])}
        if self.date_column:
            out["date_column"] = self.date_column
            out["by_week"] = {w: block(e) for w, e in sorted(self.by_week.items())}
            out["undated"] = self.undated
        return out


def format_table_row(pred) -> str:
    text = " ".join(pred.text.split())
    return f"{pred.stance:<8} {','.join(pred.issues) or '-':<40} {text[:90]}"


def tag_stream(clf: Classifier, rows: Iterator[tuple[str, dict[str, Any]]], out: TextIO, *, text_column: str = "text",
               document: bool = False, out_format: str = "jsonl", num_shards: int = 1, shard_index: int = 0,
               chunk_size: int = 256, batch_size: int = 16, progress: bool = True, explain: bool = False,
               observers: Sequence[Callable] = (), summary: Summary | None = None) -> Summary:
    """Classify this shard's rows in chunks and write one output line per row; returns the summary.

    Each of `observers` is called as `observer(where, row, text, prediction)` for every paragraph row
    (e.g. `infer.selection.LabelingSelector`), so they see the stream without a second pass.
    """
    from tqdm.auto import tqdm

    summary = summary if summary is not None else Summary()
    if out_format == "table":
        out.write(f"{'stance':<8} {'issues':<40} text\n")
    bar = tqdm(desc="Tagging", unit="row", disable=not progress, file=sys.stderr)
    chunk: list[tuple[str, dict[str, Any]]] = []

    def flush() -> None:
        texts = []
        for where, row in chunk:
            text = row.get(text_column)
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{where}: {text_column!r} is missing, not a string, or empty")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # e.g. a lone surrogate escape "\ud800" in JSON
                raise ValueError(f"{where}: {text_column!r} is not valid Unicode ({exc.reason}: "
                                 f"{text[exc.start]!r} at character {exc.start}); fix that escape in the file") from None
            texts.append(text)
        if document:
            preds = [clf.classify_document(t, batch_size=batch_size, explain=explain) for t in texts]
        else:
            preds = clf.classify(texts, batch_size=batch_size, explain=explain)
        summary.rows += len(chunk)
        for (where, row), text, pred in zip(chunk, texts, preds):
            record = {k: v for k, v in row.items() if k != text_column}
            record.update({"text": text, **{k: v for k, v in pred.to_dict().items() if k != "text"}})
            if out_format == "table":
                out.write(format_table_row(pred if not document else _doc_as_row(text, pred)) + "\n")
            else:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if not document:
                summary.add(pred, row.get("lang"), row)
                for observer in observers:
                    observer(where, row, text, pred)
            summary.n_gold += "issues" in row and "stance" in row
        bar.update(len(chunk))
        chunk.clear()

    for i, item in enumerate(rows):
        if i % num_shards != shard_index:
            continue
        chunk.append(item)
        if len(chunk) >= chunk_size:
            flush()
    if chunk:
        flush()
    bar.close()
    return summary


def _doc_as_row(text: str, doc):
    from infer.prediction import Prediction

    return Prediction(text=text, issues=doc.issues, issue_scores=doc.issue_scores, stance=doc.stance,
                      stance_scores=doc.stance_distribution)
