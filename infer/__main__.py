"""`python -m infer --model X [FILE|-]`: tag paragraphs or documents, JSON Lines (or a table) out.

    python -m infer --model runs/default paragraphs.txt              # one paragraph a line
    python -m infer --model runs/default items.jsonl > tagged.jsonl   # objects with a "text" field
    python -m infer --model runs/default news.csv --text-column body --format table
    python -m infer --model runs/default articles.jsonl --document    # whole documents
    python -m infer --model runs/default big.parquet --num-shards 4 --shard-index 0 --report out/
    python -m infer --model runs/default paras.jsonl --explain        # + the sentence behind each decision
    python -m infer --model runs/default news.jsonl -o out.jsonl --report rep/ --group-by outlet --date-column date
    python -m infer --model runs/default corpus.jsonl --select-for-labeling 50 -o to_label.jsonl

Exit status: 0 done, 1 failed, 2 bad usage or input (a missing file, a bad row, an unknown model); `infer.command`.
"""

from __future__ import annotations

import argparse
import sys

from infer.command import add_log_level
from infer.stream import FORMATS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m infer", description="Tag news paragraphs with issues and stance.")
    p.add_argument("input", nargs="?", default="-", help="input file, or - for standard input (default)")
    p.add_argument("--model", help="run directory, checkpoint or Hub id (default: $STC_MODEL or runs/default)")
    p.add_argument("--input-format", default="auto", choices=FORMATS, help="default: from the file suffix")
    p.add_argument("--text-column", default="text", help="field or column holding the text")
    p.add_argument("--document", action="store_true", help="each row is a whole document: split and aggregate")
    p.add_argument("--format", dest="out_format", default="jsonl", choices=("jsonl", "table"))
    p.add_argument("--output", "-o", default="-", help="output file (default: standard output)")
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--shard-index", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--route", default="auto", help="auto, fp32, bf16 or fp16 (see infer.routes)")
    p.add_argument("--report", metavar="DIR",
                   help="write summary.json, summary.md and plots (shares by label, language, --group-by, week)")
    p.add_argument("--explain", action="store_true",
                   help="add `evidence`: the sentence behind the stance and each issue (about sentences+1 times slower)")
    p.add_argument("--select-for-labeling", type=int, metavar="N",
                   help="write the N paragraphs most worth labeling to -o FILE, as records for review (infer.selection)")
    p.add_argument("--labeled-dir", default="data/labels",
                   help="with --select-for-labeling: skip paragraphs already labeled here ('' to skip nothing)")
    p.add_argument("--group-by", metavar="COLUMN",
                   help="row field naming the outlet/source: report shares by it; diversity of --select-for-labeling")
    p.add_argument("--date-column", metavar="COLUMN",
                   help="row field with the date (YYYY-MM-DD...): --report adds weekly shares and a plot over time")
    p.add_argument("--no-progress", action="store_true")
    add_log_level(p, default="WARNING")  # standard output may be the data: quiet unless asked
    args = p.parse_args(argv)
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        p.error(f"need --num-shards >= 1 and 0 <= --shard-index < --num-shards, got {args.num_shards}, {args.shard_index}")
    return args


if __name__ == "__main__":
    from infer.cli import main

    sys.exit(main(parse_args()))
