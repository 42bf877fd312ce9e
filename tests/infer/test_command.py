"""One CLI convention (`infer.command`): every entry point logs one line per error and exits 0 on success,
1 on failure, 2 on bad usage or input; `--log-level` everywhere; the same log format."""

import logging
import os
import subprocess
import sys

import pytest

from infer.command import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, run_command
from synthetic_data import REPO

logger = logging.getLogger("test_command")


def test_run_command_maps_outcomes_to_exit_codes(caplog):
    def fail(exc):
        def work():
            raise exc
        return work

    assert run_command(lambda: None, "INFO", logger) == EXIT_OK
    assert run_command(lambda: 1, "INFO", logger) == EXIT_FAILURE  # a check that found something says so itself
    assert run_command(fail(FileNotFoundError("input x.jsonl does not exist")), "INFO", logger) == EXIT_USAGE
    assert run_command(fail(ValueError("bad value")), "INFO", logger) == EXIT_USAGE
    assert run_command(fail(RuntimeError("CUDA out of memory")), "INFO", logger) == EXIT_FAILURE
    assert run_command(fail(OSError(28, "No space left on device")), "INFO", logger) == EXIT_FAILURE
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["input x.jsonl does not exist", "bad value",
                      "RuntimeError: CUDA out of memory (--log-level debug shows the traceback)",
                      "OSError: [Errno 28] No space left on device (--log-level debug shows the traceback)"]
    with pytest.raises(RuntimeError, match="CUDA"):  # debug: the traceback instead of the line
        run_command(fail(RuntimeError("CUDA out of memory")), "DEBUG", logger)


def _infer(argv):
    from infer.__main__ import parse_args
    from infer.cli import main

    return main(parse_args(argv))


def _entry_points():
    from train.__main__ import cli as train
    from train.average import main as average
    from train.backbones.bundled import main as backbone
    from train.evaluate.crossval import main as crossval
    from train.data.records import main as data
    from train.evaluate.evaluation import main as evaluate
    from train.publish.hub import main as publish

    return {"train": train, "train.evaluate": evaluate, "train.publish": publish, "train.data": data,
            "train.backbones": backbone, "train.evaluate.crossval": crossval, "train.average": average, "infer": _infer}


# For each entry point: a command line that succeeds, and the function it calls to do its work (replaced here by
# one that returns, or raises a failure), then a command line with bad input.
CASES = {
    "train": (["--config", "configs/default.yaml"], "train.run.main", ["--config", "{tmp}/nope.yaml"]),
    "train.evaluate": (["--model", "{tmp}"], "train.evaluate.evaluation.evaluate_run", ["--model", "{tmp}"]),
    "train.publish": (["--model", "{tmp}", "--repo-id", "org/name"], "train.publish.hub.publish",
                      ["--model", "{tmp}", "--card", "{tmp}/card.md"]),
    "train.data": (["coverage", "{data}", "--schema", "{schema}"], "train.data.coverage.coverage_tables",
                   ["coverage", "{tmp}/nope.jsonl", "--schema", "{schema}"]),
    "train.backbones": (["bundled:multilingual-e5-small", "--out", "{tmp}/out"], "train.backbones.bundled.export",
                       ["bundled:no-such-model", "--out", "{tmp}/out"]),
    "train.evaluate.crossval": (["--config", "configs/default.yaml", "--folds", "2", "--out", "{tmp}/cv"],
                       "train.evaluate.crossval.cross_validate", ["--config", "configs/default.yaml", "--folds", "1",
                                                         "--out", "{tmp}/cv"]),
    "train.average": (["{tmp}/a", "{tmp}/b", "--out", "{tmp}/avg"], "train.average.average_runs",
                      ["{tmp}/a", "{tmp}/b", "--out", "{tmp}/avg"]),
    "infer": (["{data}", "--model", "{tmp}", "--no-progress"], "infer.cli.load", ["{tmp}/nope.txt", "--no-progress"]),
}


def _argv(argv, tmp_path, data_file):
    from synthetic_data import SCHEMA_PATH

    return [a.format(tmp=tmp_path, data=data_file, schema=SCHEMA_PATH) for a in argv]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_entry_point_exits_0_1_2(name, tmp_path, data_file, monkeypatch, caplog):
    import importlib

    monkeypatch.chdir(REPO)
    main = _entry_points()[name]
    ok, target, bad = CASES[name]
    module, attr = target.rsplit(".", 1)

    # success: the work returns
    monkeypatch.setattr(importlib.import_module(module), attr, lambda *a, **k: "")
    if name == "infer":  # the work past loading: tag nothing
        monkeypatch.setattr("infer.cli.tag_stream", lambda *a, **k: type("S", (), {"rows": 1, "n_gold": 0})())
    assert main(_argv(ok, tmp_path, data_file)) == EXIT_OK

    # failure: the work raises something that is not the user's input
    def crash(*a, **k):
        raise RuntimeError("the work failed")

    monkeypatch.setattr(importlib.import_module(module), attr, crash)
    caplog.clear()
    assert main(_argv(ok, tmp_path, data_file)) == EXIT_FAILURE
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "RuntimeError: the work failed (--log-level debug shows the traceback)"]
    monkeypatch.undo()
    monkeypatch.chdir(REPO)

    # bad input: one line naming it
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    caplog.clear()
    assert main(_argv(bad, tmp_path, data_file)) == EXIT_USAGE
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]

    # bad usage: argparse's status 2, and --log-level everywhere
    with pytest.raises(SystemExit) as exc:
        main(_argv(ok, tmp_path, data_file) + ["--no-such-flag"])
    assert exc.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exc:
        main(_argv(ok, tmp_path, data_file) + ["--log-level", "loud"])
    assert exc.value.code == EXIT_USAGE


@pytest.mark.parametrize("module, argv, message", [
    ("train", ["--config", "nope.yaml"], "ERROR train: Config file not found: nope.yaml"),
    ("infer", ["nope.txt", "--model", "nope"], "ERROR infer.cli: input file nope.txt does not exist"),
])
def test_a_bad_input_is_one_log_line_in_the_common_format(module, argv, message, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == EXIT_USAGE
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith(message), proc.stderr  # "<date> <time> ERROR <logger>: ..."
    assert "Traceback" not in proc.stderr
