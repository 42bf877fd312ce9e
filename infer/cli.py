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
from infer.atomic import atomic_file
from infer.stream import detect_format, read_rows, tag_stream

logger = logging.getLogger(__name__)


def _write_report(report_dir: Path, clf, summary) -> None:
    """summary.json in `report_dir`; scoring against gold labels is `python -m train.evaluate --data`."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(report_dir / "summary.json") as fh:
        json.dump(summary.to_dict(clf.schema), fh, indent=2, ensure_ascii=False)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        clf = load(args.model, device=args.device, route=args.route)
        fmt = detect_format(args.input, args.input_format)
        rows = read_rows(args.input, fmt, args.text_column)
        if args.output == "-":
            summary = tag_stream(clf, rows, sys.stdout, text_column=args.text_column, document=args.document,
                                 out_format=args.out_format, num_shards=args.num_shards, shard_index=args.shard_index,
                                 batch_size=args.batch_size, progress=not args.no_progress)
        else:
            with atomic_file(args.output) as fh:
                summary = tag_stream(clf, rows, fh, text_column=args.text_column, document=args.document,
                                     out_format=args.out_format, num_shards=args.num_shards,
                                     shard_index=args.shard_index, batch_size=args.batch_size,
                                     progress=not args.no_progress)
        if args.report:
            _write_report(Path(args.report), clf, summary)
        if args.report and summary.n_gold:
            logger.warning("%d row(s) carry gold labels (issues, stance): to score the model on them, run "
                           "`python -m train.evaluate --model %s --data %s`", summary.n_gold,
                           args.model or "<model>", args.input)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
