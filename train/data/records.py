"""Labeled records: validation with file:line errors, loading through `datasets`, grouped splits.

Records are JSON Lines with the fields `id, text, lang, issues, stance, origin, source, group`
(see data/labels/GUIDELINES.md). `validate_files` checks every line and raises a `DataError` naming
`file:line`; `load_records` then reads the same files through `datasets`' JSON builder
(`train.data.splits.split_records` makes the grouped splits).

Command line: `python -m train.data check [FILES...]` validates and prints a summary table (also `near-copies`,
`coverage`, `sync-translations`). Exit status: 0 fine, 1 the check found a problem (or near-copies a pair), 2 bad
usage or input (a missing file, an unreadable schema).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from infer.atomic import atomic_file
from infer.classifier import visible
from infer.labels import LabelSchema
from infer.stream import decoded_lines
from infer.command import EXIT_FAILURE, EXIT_OK, add_log_level, run_command, start_command

logger = logging.getLogger(__name__)

FIELDS = ("id", "text", "lang", "issues", "stance", "origin", "source", "group")
# Optional annotation (schema.yaml `actor`, `registers`): who reacts, and the text's register.
OPTIONAL_FIELDS = ("actor", "register")
# `reviewed`: a corpus paragraph picked by `python -m infer --select-for-labeling`, its labels checked by a person
ORIGINS = ("seed", "translation", "authored", "reviewed")
SOURCE_RE = re.compile(r"^[\w.-]+\.txt#\d+$")
# ISO 639-1 two-letter codes.
ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz
    ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io
    is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr
    ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si
    sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
    yi yo za zh zu""".split()
)


class DataError(ValueError):
    """A data file is invalid; the message starts with `file:line`."""


@dataclass(frozen=True)
class DataSummary:
    """Counts over all validated records, for the `check` table and for tests."""

    n: int
    by_origin: dict[str, int]
    by_lang: dict[str, int]
    issue_counts: dict[str, int]
    stance_counts: dict[str, int]
    issue_by_lang: dict[str, dict[str, int]]
    stance_by_lang: dict[str, dict[str, int]]


EXTERNAL_ORIGIN = "external"  # origin given to records of evaluation files that carry none


def as_external_record(obj: Any) -> Any:
    """A record of an evaluation-only file (e.g. the real-news dev set: id, text, lang, issues, stance,
    url, date) in this project's fields: origin `external`, source null, group = id; other fields dropped."""
    if not isinstance(obj, dict):
        return obj
    rec = {f: obj[f] for f in ("id", "text", "lang", "issues", "stance") if f in obj}
    rec.update(origin=EXTERNAL_ORIGIN, source=None, group=obj.get("group") or obj.get("id"))
    return rec


def validate_record(obj: Any, schema: LabelSchema, where: str, external: bool = False) -> dict[str, Any]:
    """Check one parsed line; return it unchanged or raise `DataError` prefixed with `where`.

    `external`: a record mapped by `as_external_record` (origin `external` is accepted only then)."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}")
    extra = sorted(set(obj) - set(FIELDS) - set(OPTIONAL_FIELDS))
    if extra:
        raise DataError(f"{where}: unknown field(s) {extra}; allowed: {list(FIELDS + OPTIONAL_FIELDS)}")
    if not isinstance(obj["id"], str) or not obj["id"].strip():
        raise DataError(f"{where}: 'id' must be a non-empty string, got {obj['id']!r}")
    if not isinstance(obj["text"], str):
        raise DataError(f"{where}: 'text' must be a string, got {type(obj['text']).__name__} (id {obj['id']})")
    if not visible(obj["text"]):
        raise DataError(f"{where}: empty text (id {obj['id']})")
    try:
        obj["text"].encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
        raise DataError(f"{where}: 'text' is not valid Unicode ({exc.reason}: {obj['text'][exc.start]!r} at "
                        f"character {exc.start}); fix that escape (id {obj['id']})") from None
    if obj["lang"] not in ISO_639_1:
        raise DataError(f"{where}: bad language code {obj['lang']!r}: expected ISO 639-1 (e.g. 'en', 'ru')")
    issues = obj["issues"]
    if not isinstance(issues, list) or not all(isinstance(i, str) for i in issues):
        raise DataError(f"{where}: 'issues' must be a list of label names, got {issues!r}")
    for name in issues:
        if name not in schema.issues:
            raise DataError(f"{where}: unknown issue label {name!r}; the schema has {list(schema.issues)}")
    if len(set(issues)) != len(issues):
        raise DataError(f"{where}: repeated issue label in {issues}")
    if obj["stance"] not in schema.stance:
        raise DataError(f"{where}: unknown stance label {obj['stance']!r}; the schema has {list(schema.stance)}")
    if external and obj["origin"] == EXTERNAL_ORIGIN:
        pass  # an evaluation-only record: no source rules
    elif obj["origin"] not in ORIGINS:
        raise DataError(f"{where}: unknown origin {obj['origin']!r}; expected one of {list(ORIGINS)}")
    source = obj["source"]
    if external and obj["origin"] == EXTERNAL_ORIGIN:
        pass
    elif obj["origin"] == "authored":
        if source is not None:
            raise DataError(f"{where}: authored records have source null, got {source!r}")
    elif obj["origin"] == "reviewed":
        if not isinstance(source, str) or not source.strip():
            raise DataError(f"{where}: reviewed records need source: where the paragraph came from (URL or "
                            f"'<file>:<line>'), got {source!r}")
    elif not isinstance(source, str) or not SOURCE_RE.match(source):
        raise DataError(f"{where}: {obj['origin']} records need source '<seed file>.txt#<paragraph>', got {source!r}")
    if not isinstance(obj["group"], str) or not obj["group"].strip():
        raise DataError(f"{where}: 'group' must be a non-empty string, got {obj['group']!r}")
    for field, allowed in (("actor", schema.actors), ("register", schema.registers)):
        value = obj.get(field)
        if value is not None and allowed and value not in allowed:  # a checkpoint's schema may predate the field
            raise DataError(f"{where}: unknown {field} {value!r}; the schema has {list(allowed)} (or leave it out)")
    return obj


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a JSON Lines data file (give the files, e.g. {path}/*.jsonl)")
    if not path.is_file():
        raise DataError(f"{path}: data file not found")


def validate_files(files: Iterable[str | Path], schema: LabelSchema, external: bool = False) -> list[dict[str, Any]]:
    """Validate every line of every file; return the records in file order.

    `external=True` reads evaluation-only files through `as_external_record` (no origin/source/group
    needed, extra fields ignored); such records are never training data.

    Raises:
        DataError: `file:line: problem` for the first bad line (unknown label, missing field, duplicate
            id or text, empty text, bad language code), or for a missing or empty file.
    """
    records: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    texts: dict[str, str] = {}
    for path in map(Path, files):
        _require_file(path)
        n_before = len(records)
        with path.open("rb") as fh:
            for lineno, line in enumerate(decoded_lines(fh, str(path), DataError), 1):
                where = f"{path}:{lineno}"
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: invalid JSON: {exc.msg}") from exc
                rec = (validate_record(as_external_record(obj), schema, where, external=True) if external
                       else validate_record(obj, schema, where))
                if rec["id"] in ids:
                    raise DataError(f"{where}: duplicate id {rec['id']!r} (first at {ids[rec['id']]})")
                ids[rec["id"]] = where
                key = " ".join(rec["text"].split()).casefold()
                if key in texts:
                    raise DataError(f"{where}: duplicate text (id {rec['id']}) first at {texts[key]}")
                texts[key] = where
                records.append(rec)
        if len(records) == n_before:
            raise DataError(f"{path}: no records (empty data file)")
    if not records:
        raise DataError("no data files given")
    return records


def load_records(files: Iterable[str | Path], schema: LabelSchema, external: bool = False):
    """Validate `files`, then load them with `datasets`' JSON builder into one `Dataset`.

    With `external=True` (evaluation-only files, see `validate_files`) the validated, mapped records
    are loaded with `Dataset.from_list` instead.

    Example:
        >>> ds = load_records(["data/labels/seed.jsonl"], LabelSchema.from_yaml("data/labels/schema.yaml"))
        >>> ds.column_names[:3]
        ['id', 'text', 'lang']
    """
    import datasets

    files = [str(f) for f in files]
    records = validate_files(files, schema, external=external)
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "lang": datasets.Value("string"),
            "issues": datasets.Sequence(datasets.Value("string")),
            "stance": datasets.Value("string"),
            "origin": datasets.Value("string"),
            "source": datasets.Value("string"),
            "group": datasets.Value("string"),
            "actor": datasets.Value("string"),  # optional fields: null where a record has none
            "register": datasets.Value("string"),
        }
    )
    if external:
        return datasets.Dataset.from_list([{**dict.fromkeys(OPTIONAL_FIELDS), **r} for r in records],
                                          features=features)
    return datasets.load_dataset("json", data_files=files, features=features, split="train")


def summarize(records: Iterable[dict[str, Any]], schema: LabelSchema) -> DataSummary:
    records = list(records)
    issue_by_lang: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    stance_by_lang: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records:
        issue_by_lang[r["lang"]].update(r["issues"])
        stance_by_lang[r["lang"]][r["stance"]] += 1
    issue_counts = collections.Counter(i for r in records for i in r["issues"])
    stance_counts = collections.Counter(r["stance"] for r in records)
    return DataSummary(
        n=len(records),
        by_origin=dict(collections.Counter(r["origin"] for r in records)),
        by_lang=dict(collections.Counter(r["lang"] for r in records).most_common()),
        issue_counts={name: issue_counts[name] for name in schema.issues},
        stance_counts={name: stance_counts[name] for name in schema.stance},
        issue_by_lang={lang: {n: c[n] for n in schema.issues} for lang, c in issue_by_lang.items()},
        stance_by_lang={lang: {n: c[n] for n in schema.stance} for lang, c in stance_by_lang.items()},
    )


def split_summary(splits, schema: LabelSchema) -> dict[str, Any]:
    """Counts (per language, origin and label) of all records and of each split: a run's `data_summary.json`.

    The model card reads it, so the card describes the data the run was trained on, not today's files.
    """
    records = [r for split in splits.values() for r in split]
    return {"all": dataclasses.asdict(summarize(records, schema)),
            "splits": {name: dataclasses.asdict(summarize(split, schema)) for name, split in splits.items()}}


def format_summary(summary: DataSummary, schema: LabelSchema) -> str:
    """A plain-text table: one row per language, one column per label, totals last."""
    cols = list(schema.issues) + list(schema.stance)
    width = max(len(c) for c in cols) + 1
    head = f"{'lang':<6}{'n':>6} " + "".join(f"{c:>{width}}" for c in cols)
    lines = [head, "-" * len(head)]
    for lang, n in summary.by_lang.items():
        row = {**summary.issue_by_lang[lang], **summary.stance_by_lang[lang]}
        lines.append(f"{lang:<6}{n:>6} " + "".join(f"{row[c]:>{width}}" for c in cols))
    total = {**summary.issue_counts, **summary.stance_counts}
    lines.append("-" * len(head))
    lines.append(f"{'all':<6}{summary.n:>6} " + "".join(f"{total[c]:>{width}}" for c in cols))
    lines.append("")
    lines.append("by origin: " + ", ".join(f"{k}={v}" for k, v in sorted(summary.by_origin.items())))
    return "\n".join(lines)


def tokenize_splits(splits, tokenizer, schema: LabelSchema, max_length: int):
    """Add `input_ids`, `attention_mask`, `labels` (float vector) and `length` to every split."""

    def encode(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["labels"] = [schema.encode(i, s) for i, s in zip(batch["issues"], batch["stance"])]
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    return splits.map(encode, batched=True, desc="Tokenizing")


def check_translations(records: list[dict[str, Any]]) -> None:
    """Every translation must carry the source and labels of the seed paragraph of its group."""
    seeds = {r["group"]: r for r in records if r["origin"] == "seed"}
    for r in records:
        if r["origin"] != "translation":
            continue
        seed = seeds.get(r["group"])
        if seed is None:
            raise DataError(f"translation {r['id']}: no seed record in its group {r['group']!r}")
        if (r["source"], r["issues"], r["stance"]) != (seed["source"], seed["issues"], seed["stance"]):
            raise DataError(f"translation {r['id']}: source/labels differ from its seed {seed['id']}; "
                            "run `python -m train.data sync-translations`")


def _read_objects(path: Path) -> list[Any]:
    """The parsed lines of a JSON Lines file; errors name `file:line`."""
    _require_file(path)
    out = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(decoded_lines(fh, str(path), DataError), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
    return out


def sync_translations(files: Iterable[str | Path]) -> int:
    """Copy each seed paragraph's `issues`/`stance` onto the translations of its group, in place.

    Labels are decided once, on the seed record; translation files may hold null labels until this
    runs. Each file is rewritten atomically. Returns the number of records changed.
    """
    paths = [Path(f) for f in files]
    rows = {p: _read_objects(p) for p in paths}
    seeds = {r["group"]: r for recs in rows.values() for r in recs if r.get("origin") == "seed"}
    changed = 0
    for path, recs in rows.items():
        dirty = False
        for r in recs:
            seed = seeds.get(r.get("group"))
            if r.get("origin") != "translation" or seed is None:
                continue
            if (r.get("issues"), r.get("stance")) != (seed["issues"], seed["stance"]):
                r["issues"], r["stance"] = list(seed["issues"]), seed["stance"]
                changed, dirty = changed + 1, True
        if dirty:
            with atomic_file(path) as fh:
                fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    return changed


def check(files: list[str | Path], schema: LabelSchema, min_issue: int = 0, min_stance: int = 0) -> DataSummary:
    """Validate `files` and check the label counts; raises `DataError` on the first problem."""
    records = validate_files(files, schema)
    check_translations(records)
    summary = summarize(records, schema)
    short = [f"issue {k}: {v} < {min_issue}" for k, v in summary.issue_counts.items() if v < min_issue]
    short += [f"stance {k}: {v} < {min_stance}" for k, v in summary.stance_counts.items() if v < min_stance]
    if short:
        raise DataError("too few examples: " + "; ".join(short))
    return summary


def near_copies(records: list[dict[str, Any]], others: list[dict[str, Any]] | None = None,
                threshold: float = 0.8) -> list[tuple[str, str, float]]:
    """Pairs of near-identical texts: cosine similarity of character 3-5-gram TF-IDF vectors >= `threshold`.

    Among `records` (records of one group, e.g. translations, are not compared), or, with `others` (e.g. the
    real-news dev set), between each record and each of `others`. Returns (id, other id, similarity), most
    similar first.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    others_given = others is not None
    others = records if others is None else others
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1)
    vec.fit([r["text"] for r in records] + ([r["text"] for r in others] if others_given else []))
    a, b = vec.transform([r["text"] for r in records]), vec.transform([r["text"] for r in others])
    sims = (a @ b.T).tocoo()
    out = []
    for i, j, v in zip(sims.row, sims.col, sims.data):
        if v < threshold or (not others_given and (j <= i or records[i]["group"] == records[j]["group"])):
            continue
        out.append((records[i]["id"], others[j]["id"], round(float(v), 3)))
    return sorted(out, key=lambda t: -t[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate data files and print a per-label, per-language summary")
    p.add_argument("files", nargs="*", help="JSON Lines files (default: data/labels/*.jsonl)")
    p.add_argument("--schema", default="data/labels/schema.yaml")
    p.add_argument("--min-issue", type=int, default=60, help="fail if an issue has fewer positives")
    p.add_argument("--min-stance", type=int, default=100, help="fail if a stance class has fewer records")
    n = sub.add_parser("near-copies", help="list near-identical texts among the files, or against --against files")
    n.add_argument("files", nargs="*", help="JSON Lines files (default: data/labels/*.jsonl)")
    n.add_argument("--against", nargs="*", default=None, help="evaluation files to compare with (e.g. the dev set)")
    n.add_argument("--threshold", type=float, default=0.8, help="cosine of character n-gram TF-IDF vectors")
    n.add_argument("--schema", default="data/labels/schema.yaml")
    c = sub.add_parser("coverage", help="print the coverage plan's tables (who reacts x stance, register, issue, "
                                        "language), empty and thin cells marked")
    c.add_argument("files", nargs="*", help="JSON Lines files (default: data/labels/*.jsonl)")
    c.add_argument("--thin", type=int, default=10, help="mark cells with fewer records")
    c.add_argument("--schema", default="data/labels/schema.yaml")
    s = sub.add_parser("sync-translations", help="copy seed labels onto the translations of each group")
    s.add_argument("files", nargs="*", help="JSON Lines files (default: data/labels/*.jsonl)")
    for command in (p, n, c, s):
        add_log_level(command)
    args = parser.parse_args(argv)
    start_command(args.log_level)  # SIGTERM like Ctrl-C: a file being rewritten keeps its old content
    files = args.files or sorted(Path("data/labels").glob("*.jsonl"))

    def work() -> int:
        if args.command == "sync-translations":
            logger.info("%d translation record(s) relabeled from their seed", sync_translations(files))
            return EXIT_OK
        schema = LabelSchema.from_yaml(args.schema)
        if args.command == "coverage":
            from train.data.coverage import coverage_tables

            print(coverage_tables(validate_files(files, schema), schema, args.thin))
            return EXIT_OK
        if args.command == "near-copies":
            records = validate_files(files, schema)
            others = validate_files(args.against, schema, external=True) if args.against else None
            pairs = near_copies(records, others, args.threshold)
            for rec_id, other_id, sim in pairs:
                print(f"{sim:.3f}\t{rec_id}\t{other_id}")
            logger.info("%d pair(s) at cosine >= %s", len(pairs), args.threshold)
            return EXIT_FAILURE if pairs else EXIT_OK
        for path in map(Path, files):  # a file that is not there is bad usage (2), not a finding
            _require_file(path)
        try:
            summary = check(files, schema, args.min_issue, args.min_stance)
        except DataError as exc:  # what the check is for: a finding about the data (1)
            logger.error("%s", exc)
            return EXIT_FAILURE
        print(f"{len(files)} file(s), {summary.n} records: OK\n")
        print(format_summary(summary, schema))
        return EXIT_OK

    return run_command(work, args.log_level, logger)

