"""`main(args)` behind `python -m infer`: load, stream, write output atomically, optional summary.

`infer` never imports `train` (applications install the light runtime only): `--report` writes the
summary of what was tagged; scoring against gold labels is `python -m train.evaluate --model M --data FILE`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from infer import load
from infer.atomic import atomic_file, check_output_path, report_stale_temporaries
from infer.stream import Summary, detect_format, read_rows, require_fields, tag_stream
from infer.command import BAD_INPUT, run_command, start_command

logger = logging.getLogger(__name__)


def _write_report(report_dir: Path, clf, summary) -> None:
    """summary.json in `report_dir`; scoring against gold labels is `python -m train.evaluate --data`."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(report_dir / "summary.json") as fh:
        json.dump(summary.to_dict(clf.schema), fh, indent=2, ensure_ascii=False)
    from infer.corpus_report import write_corpus_report  # matplotlib is imported only inside it

    write_corpus_report(summary.to_dict(clf.schema), clf.schema, report_dir,
                        model=str(getattr(clf.model.config, "_name_or_path", "")))


def _check_paths(args: argparse.Namespace) -> None:
    """Fail on unusable input/output paths before any model is loaded, naming the user's path."""
    if args.input != "-":
        src = Path(args.input)
        if not src.exists():
            raise FileNotFoundError(f"input file {src} does not exist")
        if src.is_dir():
            raise IsADirectoryError(f"input {src} is a directory; give a file (or - for standard input)")
    if args.output != "-":
        check_output_path(args.output)
        if args.input != "-" and Path(args.output).resolve() == Path(args.input).resolve():
            raise ValueError(f"--output {args.output} is the input file {args.input}: writing it would replace what "
                             "is being read; name another output file")
        report_stale_temporaries(args.output)
    if args.report:
        report = Path(args.report)
        if report.exists() and not report.is_dir():
            raise NotADirectoryError(f"--report {report} exists and is not a directory")
        if not report.exists() and not report.parent.is_dir():
            raise FileNotFoundError(f"--report {report}: its directory {report.parent} does not exist")


def main(args: argparse.Namespace) -> int:
    """Tag the input as `args` say; exit status 0 done, 1 failed, 2 bad usage or input (`infer.command`)."""
    start_command(args.log_level)  # SIGTERM like Ctrl-C: the atomic output's temporary file is removed
    return run_command(lambda: _tag(args), args.log_level, logger,
                       bad_input=BAD_INPUT + (TypeError,))  # TypeError: a row whose text is not a string


def _tag(args: argparse.Namespace) -> int | None:
    """The work of `main`: check paths, load the model, read, tag (or select), write, report."""
    _check_paths(args)
    clf = load(args.model, device=args.device, route=args.route)
    fmt = detect_format(args.input, args.input_format)
    rows = require_fields(read_rows(args.input, fmt, args.text_column),
                          {"--group-by": args.group_by, "--date-column": args.date_column})
    if args.select_for_labeling:
        from infer.selection import run_selection

        if args.document:
            raise ValueError("--select-for-labeling works on paragraphs; drop --document")
        run_selection(clf, rows, args.select_for_labeling, args.output, text_column=args.text_column,
                      group_by=args.group_by, labeled_dir=args.labeled_dir, num_shards=args.num_shards,
                      shard_index=args.shard_index, batch_size=args.batch_size, progress=not args.no_progress)
        return None
    tag = dict(text_column=args.text_column, document=args.document, out_format=args.out_format,
               num_shards=args.num_shards, shard_index=args.shard_index, batch_size=args.batch_size,
               progress=not args.no_progress, explain=args.explain,  # analyst options (infer.evidence, corpus_report)
               summary=Summary(group_by=args.group_by, date_column=args.date_column))
    if args.output == "-":
        summary = tag_stream(clf, rows, sys.stdout, **tag)
    else:
        with atomic_file(args.output) as fh:
            summary = tag_stream(clf, rows, fh, **tag)
    if summary.rows == 0:
        shard = f" for shard {args.shard_index} of {args.num_shards}" if args.num_shards > 1 else ""
        logger.warning("%s: no rows to tag%s (empty input); the output is empty",
                       "<stdin>" if args.input == "-" else args.input, shard)
    if args.report:
        _write_report(Path(args.report), clf, summary)
    if args.report and summary.n_gold:
        logger.warning("%d row(s) carry gold labels (issues, stance): to score the model on them, run "
                       "`python -m train.evaluate --model %s --data %s`", summary.n_gold,
                       args.model or "<model>", args.input)
    return None
