"""`python -m infer`: input formats, output formats, shards, documents, report, errors."""

import csv
import json
import logging

import pytest

from infer.__main__ import parse_args
from infer.cli import main

LINES = ["NATO drills near the border", "Sanctions on Russian banks", "Beijing backs Moscow",
         "Missiles in Europe", "Talks in Geneva"]


def run(argv, capsys):
    """(exit code, standard output, standard error + the logged messages: where a terminal shows errors)."""
    logged = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    try:
        code = main(parse_args(argv + ["--no-progress", "--route", "fp32"]))
    finally:
        logging.getLogger().removeHandler(handler)
    out = capsys.readouterr()
    return code, out.out, out.err + "\n".join(logged)


def test_lines_to_jsonl(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n\n")
    code, out, _ = run(["--model", str(tiny_checkpoint), str(src)], capsys)
    assert code == 0
    rows = [json.loads(l) for l in out.splitlines()]
    assert [r["text"] for r in rows] == LINES
    assert {"issues", "issue_scores", "stance", "stance_scores"} <= set(rows[0])


def test_jsonl_with_extra_fields_and_report(tiny_checkpoint, tmp_path, capsys, caplog):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t, "lang": "en" if i % 2 else "de", "issues": ["sanctions"],
                                       "stance": "neutral"}) + "\n" for i, t in enumerate(LINES)))
    out_file = tmp_path / "out.jsonl"
    code, _, _ = run(["--model", str(tiny_checkpoint), str(src), "-o", str(out_file), "--report", str(tmp_path / "rep")],
                     capsys)
    assert code == 0
    rows = [json.loads(l) for l in out_file.read_text().splitlines()]
    assert [r["id"] for r in rows] == list(range(5))
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["n"] == 5 and set(summary["by_lang"]) == {"en", "de"}
    assert sum(summary["stance_counts"].values()) == 5
    assert summary["stance_counts"] == {s: sum(r["stance"] == s for r in rows) for s in summary["stance_counts"]}
    # scoring against the gold labels is train.evaluate's job: the corpus summary and its plots only, and a hint
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == ["by_language.png", "overall.png", "summary.json", "summary.md"]
    assert not any(n.startswith("report") for n in names)
    assert f"python -m train.evaluate --model {tiny_checkpoint} --data {src}" in caplog.text


def test_csv_text_column_and_table(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.csv"
    with src.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["body", "k"])
        w.writeheader()
        w.writerows({"body": t, "k": i} for i, t in enumerate(LINES))
    code, out, _ = run(["--model", str(tiny_checkpoint), str(src), "--text-column", "body", "--format", "table"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("stance") and len(lines) == 6
    code, _, err = run(["--model", str(tiny_checkpoint), str(src)], capsys)
    assert code == 2 and "no column 'text'" in err


def test_parquet(tiny_checkpoint, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": LINES}), src)
    code, out, _ = run(["--model", str(tiny_checkpoint), str(src)], capsys)
    assert code == 0 and len(out.splitlines()) == 5


def test_shards_are_disjoint_and_complete(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(f"{t} {i}" for i, t in enumerate(LINES * 3)))
    seen = []
    for i in range(3):
        code, out, _ = run(["--model", str(tiny_checkpoint), str(src), "--num-shards", "3", "--shard-index", str(i)],
                           capsys)
        assert code == 0
        seen.append([json.loads(l)["text"] for l in out.splitlines()])
    flat = [t for shard in seen for t in shard]
    assert sorted(flat) == sorted(f"{t} {i}" for i, t in enumerate(LINES * 3))
    assert len(set(flat)) == len(flat)


def test_documents(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "docs.jsonl"
    src.write_text(json.dumps({"text": "NATO drills.\n\nSanctions on banks."}) + "\n")
    code, out, _ = run(["--model", str(tiny_checkpoint), str(src), "--document"], capsys)
    row = json.loads(out)
    assert code == 0 and len(row["paragraphs"]) == 2 and "stance_distribution" in row


def test_bad_rows_name_file_and_line(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"text": "  "}) + "\n")
    code, _, err = run(["--model", str(tiny_checkpoint), str(src)], capsys)
    assert code == 2 and f"{src}:2" in err
    src.write_text("{broken\n")
    code, _, err = run(["--model", str(tiny_checkpoint), str(src)], capsys)
    assert code == 2 and f"{src}:1: invalid JSON" in err


def test_failed_run_leaves_no_output_file(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"nope": 1}) + "\n")
    out_file = tmp_path / "out.jsonl"
    code, _, _ = run(["--model", str(tiny_checkpoint), str(src), "-o", str(out_file)], capsys)
    assert code == 2 and not out_file.exists()
    assert not list(tmp_path.glob(".out.jsonl.*"))


def test_bad_shard_arguments():
    with pytest.raises(SystemExit):
        parse_args(["--num-shards", "2", "--shard-index", "2"])


# --- failures: say what and where, leave nothing behind ------------------------------------------------


def test_sigterm_leaves_no_partial_output(tiny_checkpoint, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from synthetic_data import REPO

    src = tmp_path / "big.txt"
    src.write_text("\n".join(f"NATO drills near the border, day {i}" for i in range(200_000)) + "\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "infer", "--model", str(tiny_checkpoint), str(src), "-o",
                             str(out_dir / "out.jsonl"), "--no-progress", "--route", "fp32"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600  # generous: the machine may be busy
    while not list(out_dir.glob(".out.jsonl.*")):  # the temporary appears once tagging starts
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline, "no temporary output file appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert list(out_dir.iterdir()) == [], err[-2000:]
    assert b"Traceback" not in err


def test_output_path_problems_fail_before_any_model_work(tmp_path, capsys, monkeypatch):
    import infer.cli

    monkeypatch.setattr(infer.cli, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    src = tmp_path / "in.txt"
    src.write_text("NATO\n")
    code, _, err = run(["--model", "x", str(src), "-o", str(tmp_path)], capsys)
    assert code == 2 and f"output file {tmp_path} is a directory" in err
    code, _, err = run(["--model", "x", str(src), "-o", str(tmp_path / "missing" / "out.jsonl")], capsys)
    assert code == 2 and f"its directory {tmp_path / 'missing'} does not exist" in err and ".out.jsonl." not in err
    code, _, err = run(["--model", "x", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and f"input file {tmp_path / 'nope.txt'} does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_missing_model_directory_is_named(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("NATO\n")
    code, _, err = run(["--model", str(tmp_path / "no" / "such" / "run"), str(src)], capsys)
    assert code == 2 and f"model directory {tmp_path / 'no' / 'such' / 'run'} does not exist" in err
    assert "Hub" not in err and "Traceback" not in err


def test_missing_model_that_looks_like_a_hub_id_says_it_could_not_be_fetched(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # read once at import: an earlier test may have imported the hub client, so set the flag itself too
    # (otherwise this waits on network retries instead of failing fast, as on an offline machine)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("NATO\n")
    code, _, err = run(["--model", "no-such-org/no-such-model", "in.txt"], capsys)
    assert code == 2 and "no-such-org/no-such-model: no such local directory" in err
    assert "could not be fetched from the Hugging Face Hub" in err


def test_truncated_weights_name_the_damaged_file(tiny_checkpoint, tmp_path, capsys):
    import shutil

    damaged = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, damaged)
    weights = damaged / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    (tmp_path / "in.txt").write_text("NATO\n")
    code, _, err = run(["--model", str(damaged), str(tmp_path / "in.txt")], capsys)
    assert code == 2 and f"{weights} is damaged or incomplete" in err
    assert "re-save the checkpoint or download it again" in err and "Traceback" not in err


def test_binary_input_names_file_line_and_offset(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_bytes(b"NATO drills\nCaf\xe9 in Moscow\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run(["--model", str(tiny_checkpoint), str(src), "-o", str(out)], capsys)
    assert code == 2 and f"{src}:2: not UTF-8 text (byte 0xe9 at byte offset 15" in err
    assert "iconv" in err and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]


def test_lone_surrogate_in_a_jsonl_record_names_file_and_line(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "ok"}\n{"text": "bad \\ud800 here"}\n')
    code, _, err = run(["--model", str(tiny_checkpoint), str(src)], capsys)
    assert code == 2 and f"{src}:2: 'text' is not valid Unicode" in err and "texts[" not in err


def test_empty_input_warns(tiny_checkpoint, tmp_path, capsys, caplog):
    src = tmp_path / "empty.txt"
    src.write_text("\n\n")
    out = tmp_path / "out.jsonl"
    code, _, _ = run(["--model", str(tiny_checkpoint), str(src), "-o", str(out)], capsys)
    assert code == 0 and out.read_text() == ""
    assert f"{src}: no rows to tag (empty input)" in caplog.text


def test_output_onto_its_own_input_is_refused_and_the_input_kept(tmp_path, capsys, monkeypatch):
    import infer.cli

    monkeypatch.setattr(infer.cli, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    src = tmp_path / "gold.jsonl"
    src.write_text('{"text": "NATO", "stance": "against"}\n')
    before = src.read_bytes()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    for out in (str(src), "gold.jsonl", "./sub/../gold.jsonl"):
        code, _, err = run(["--model", "x", "gold.jsonl", "-o", out], capsys)
        assert code == 2 and f"--output {out} is the input file gold.jsonl" in err
    assert src.read_bytes() == before


def test_temporaries_of_a_killed_earlier_run_are_removed_with_a_warning(tiny_checkpoint, tmp_path, capsys, caplog):
    import logging
    import os

    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n")
    old = tmp_path / ".out.jsonl.abc123.tmp"  # what a SIGKILLed writer of out.jsonl leaves behind
    old.write_text("")
    os.utime(old, (1, 1))
    with caplog.at_level(logging.WARNING, logger="infer.atomic"):
        code, _, _ = run(["--model", str(tiny_checkpoint), str(src), "-o", str(tmp_path / "out.jsonl")], capsys)
    assert code == 0 and not old.exists()
    assert "interrupted earlier write" in caplog.text and ".out.jsonl.abc123.tmp" in caplog.text


@pytest.mark.parametrize("flag", ["--group-by", "--date-column"])
def test_a_report_column_that_is_not_in_the_rows_is_one_line(tiny_checkpoint, tmp_path, capsys, flag):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "NATO drills", "outlet": "a"}\n{"text": "Sanctions", "outlet": "b"}\n')
    out = tmp_path / "out.jsonl"
    code, _, err = run(["--model", str(tiny_checkpoint), str(src), "-o", str(out), "--report", str(tmp_path / "r"),
                        flag, "nosuchcol"], capsys)
    assert code == 2 and f"{flag} nosuchcol: {src}:1 has no field 'nosuchcol'; its fields: ['outlet', 'text']" in err
    assert not out.exists() and not (tmp_path / "r").exists()
    code, _, err = run(["--model", str(tiny_checkpoint), str(src), "-o", str(out), "--select-for-labeling", "1",
                        "--labeled-dir", "", "--group-by", "nosuchcol"], capsys)
    assert code == 2 and "--group-by nosuchcol" in err
