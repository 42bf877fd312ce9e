"""`python -m infer`: input formats, output formats, shards, documents, report, errors."""

import csv
import json

import pytest

from infer.__main__ import parse_args
from infer.cli import main

LINES = ["NATO drills near the border", "Sanctions on Russian banks", "Beijing backs Moscow",
         "Missiles in Europe", "Talks in Geneva"]


def run(argv, capsys):
    code = main(parse_args(argv + ["--no-progress", "--route", "fp32"]))
    out = capsys.readouterr()
    return code, out.out, out.err


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
    # scoring against the gold labels is train.evaluate's job: the summary only, and a hint
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["summary.json"]
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
