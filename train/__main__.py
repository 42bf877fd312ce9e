"""`python -m train --config configs/default.yaml [--set key=value ...] [--out DIR] [--resume]`.

Exit status 0 (trained), 1 (training failed), 2 (bad usage, config or data); see `infer.command`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from infer.command import add_log_level, run_command, start_command
from train.config import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description="Fine-tune the issue + stance classifier.")
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--out", "--output-dir", dest="output_dir",
                        help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run (or an interrupted one) "
                        "at the output directory")
    add_log_level(parser)
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_command(args.log_level)  # SIGTERM like Ctrl-C: the .partial run stays resumable
    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])

    def work() -> None:
        from train.run import main

        main(load_config(args.config, overrides), resume=args.resume, overwrite=args.overwrite)

    return run_command(work, args.log_level, logging.getLogger("train"))


if __name__ == "__main__":
    sys.exit(cli())
