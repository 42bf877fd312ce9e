"""Publish a run to the Hugging Face Hub with its model card.

    python -m train.publish --model runs/default --repo-id ORG/NAME [--public] [--revision BRANCH] [--dtype fp16]
    python -m train.publish --model runs/default --repo-id ORG/NAME --dry-run --out DIR   # the folder, no upload
    python -m train.publish --model runs/default --card model_card.md                      # regenerate the card only

The folder holds the checkpoint in safetensors only (no pickles), the tokenizer, config.json with labels
and thresholds, the evaluation report and plots, and the model card as README.md; never the training
data. A new repository is private unless `--public` (`publish(private=...)`, `hub.private` in the config:
private by default everywhere). The token comes from `huggingface_hub.get_token()` (`HF_TOKEN` or the
standard `huggingface-cli login`), and is never logged. Exit status: 0 published (or written), 1 the Hub
refused or could not be reached, 2 bad usage or input (not a finished run, no token, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from infer.atomic import atomic_dir
from infer.command import add_log_level, run_command, start_command
from train.publish.model_card import build_card

logger = logging.getLogger(__name__)

# Files copied from a run; anything else (splits, metrics history, checkpoints, pickles) stays home.
PUBLISHED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "sentencepiece.bpe.model", "label_schema.yaml", "train_config.yaml", "report.json", "report.md",
             "stance_confusion.png", "issue_f1_by_system.png", "macro_f1_by_language.png")


class PublishError(ValueError):
    """Publishing cannot proceed (not a finished run, no token, a bad option); nothing was uploaded."""


class HubError(RuntimeError):
    """A Hub call failed (offline, refused, bad token); the message names the step."""


def build_folder(run_dir: str | Path, out_dir: str | Path, repo_id: str | None = None, dtype: str | None = None) -> Path:
    """Write exactly the folder that would be uploaded to `out_dir` (atomically: temp dir, then rename)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    for needed in ("config.json", "model.safetensors", "report.json", "train_config.yaml"):
        if not (run_dir / needed).is_file():
            raise PublishError(f"{run_dir} has no {needed}: publish a finished run of `python -m train` "
                               "(report.json is written when eval.enabled is true)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PublishError(f"--out {out_dir} exists and is not an empty directory")
    with atomic_dir(out_dir) as tmp:
        for name in PUBLISHED:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, tmp / name)
        write_portable_config(run_dir / "train_config.yaml", tmp / "train_config.yaml")
        if dtype:
            _cast_weights(tmp / "model.safetensors", dtype)
        build_card(run_dir, repo_id).save(tmp / "README.md")
    return out_dir


def portable(value, root: Path | None = None):
    """`value` (a resolved config, as a dict) with no absolute path of this machine: paths under `root` (default:
    the working directory) become relative, others keep their last part; `output_dir` is dropped.

    >>> portable({"output_dir": "/tmp/r", "data": {"files": ["/home/me/p/data/a.jsonl", "data/b.jsonl"]}},
    ...          root=Path("/home/me/p"))
    {'output_dir': None, 'data': {'files': ['data/a.jsonl', 'data/b.jsonl']}}
    """
    import os

    root = Path.cwd() if root is None else root
    if isinstance(value, dict):
        return {k: None if k == "output_dir" else portable(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, root) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        path = Path(value)
        return str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    return value


def write_portable_config(src: Path, dst: Path) -> None:
    """Copy a run's `train_config.yaml` through `portable` (a published folder names no path of this machine)."""
    import yaml

    cfg = yaml.safe_load(src.read_text(encoding="utf-8"))
    dst.write_text(yaml.safe_dump(portable(cfg), sort_keys=False, allow_unicode=True), encoding="utf-8")


def _cast_weights(path: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    target = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(dtype)
    if target is None:
        raise PublishError(f"--dtype must be fp16, bf16 or fp32, got {dtype!r}")
    tensors = {k: (v.to(target) if v.is_floating_point() else v) for k, v in load_file(path).items()}
    save_file(tensors, path, metadata={"format": "pt"})


def _token() -> str:
    from huggingface_hub import get_token

    token = get_token()  # HF_TOKEN, else the token saved by `huggingface-cli login`
    if not token:
        raise PublishError("No Hugging Face token: set HF_TOKEN or run `huggingface-cli login`. Nothing was uploaded.")
    return token


@contextlib.contextmanager
def _step(step: str, token: str):
    """Turn any failure of a Hub call into one PublishError line naming the step and the cause (offline,
    bad token, ...); the token is masked should a library echo it."""
    try:
        yield
    except Exception as exc:  # the Hub client raises HTTP, connection and offline errors of many types
        cause = (str(exc).strip().splitlines() or [""])[0].replace(token, "***")
        raise HubError(f"{step} failed: {type(exc).__name__}: {cause}") from None


def headline(run_dir: Path) -> str:
    model = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["systems"]["model"]
    return (f"issue macro-F1 {model['issues']['macro_f1']:.3f}, stance macro-F1 {model['stance']['macro_f1']:.3f}")


def publish(run_dir: str | Path, repo_id: str, *, private: bool = True, revision: str | None = None,
            dtype: str | None = None, api=None) -> str:
    """Create the repo if needed and upload the run's folder; return the commit URL.

    Example:
        >>> publish("runs/default", "my-org/security-talks-classifier", private=True)  # doctest: +SKIP
    """
    from huggingface_hub import HfApi

    token = _token()  # before any network call
    run_dir = Path(run_dir)
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_folder(run_dir, Path(tmp) / "upload", repo_id, dtype)
        with _step(f"create repo {repo_id}", token):
            api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            with _step(f"create branch {revision} of {repo_id}", token):
                api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
        with _step(f"upload to {repo_id}", token):
            info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                     revision=revision, commit_message=f"Upload {run_dir.name}: {headline(run_dir)}")
    logger.info("Published %s to %s", run_dir, repo_id)
    return str(getattr(info, "commit_url", info))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.publish", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="run directory made by `python -m train`")
    p.add_argument("--run", help=argparse.SUPPRESS)  # the former name of --model, still accepted
    p.add_argument("--repo-id", help="ORG/NAME on the Hub")
    vis = p.add_mutually_exclusive_group()
    vis.add_argument("--public", action="store_true", help="create the repository as public (default: private)")
    vis.add_argument("--private", action="store_true", help="create the repository as private (the default)")
    p.add_argument("--revision", help="branch to upload to (created if missing)")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), help="cast the weights before upload")
    p.add_argument("--dry-run", action="store_true", help="write the folder to --out and upload nothing")
    p.add_argument("--out", help="folder for --dry-run")
    p.add_argument("--card", help="only (re)write the model card of the run to this path")
    add_log_level(p)
    args = p.parse_args(argv)
    if args.run and args.model and args.run != args.model:
        p.error(f"--run {args.run} and --model {args.model} name different runs; give --model only")
    if not (args.model or args.run):
        p.error("the following arguments are required: --model")
    if args.dry_run and not args.card and not args.out:
        p.error("--dry-run needs --out DIR")
    if not (args.card or args.dry_run or args.repo_id):
        p.error("--repo-id is required to publish")
    start_command(args.log_level)
    if args.run:
        logger.warning("--run is deprecated: use --model %s", args.run)
    run = args.model or args.run

    def work() -> None:
        if args.card:
            build_card(run, args.repo_id).save(args.card)
            logger.info("Model card written to %s", args.card)
        elif args.dry_run:
            build_folder(run, args.out, args.repo_id, args.dtype)
            logger.info("Dry run: the folder that would be uploaded is %s", args.out)
        else:
            logger.info("Commit: %s", publish(run, args.repo_id, private=not args.public, revision=args.revision,
                                              dtype=args.dtype))

    return run_command(work, args.log_level, logger, failures=(HubError,))

