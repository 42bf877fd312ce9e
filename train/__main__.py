"""`python -m train --config configs/default.yaml [--set key=value ...] [--output-dir DIR] [--resume]`."""

from __future__ import annotations

import argparse
import logging
import sys

from train.command import run_command, start_command
from train.config import ConfigError, load_config
from train.data import DataError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description="Fine-tune the issue + stance classifier.")
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--output-dir", help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run (or an interrupted one) "
                        "at the output directory")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def cli(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start_command(args.log_level)  # SIGTERM like Ctrl-C: the .partial run stays resumable
    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    from train.run import main

    return run_command(lambda: main(load_config(args.config, overrides), resume=args.resume,
                                            overwrite=args.overwrite), args.log_level,
                       (ConfigError, DataError, OSError, ImportError, ValueError), logging.getLogger("train"))


if __name__ == "__main__":
    sys.exit(cli())
