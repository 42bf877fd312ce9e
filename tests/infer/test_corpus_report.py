"""The corpus report of `python -m infer --report`: streamed counts by language/group/week, summary.md, plots."""

import collections
import json
import sys

import pytest

from infer.__main__ import parse_args
from infer.cli import main
from infer.corpus_report import week_start, write_corpus_report
from infer.prediction import Prediction
from infer.stream import Summary

PNG = b"\x89PNG\r\n\x1a\n"


def _pred(issues, stance):
    return Prediction("t", issues, {}, stance, {})


def test_summary_counts_by_group_and_week_while_streaming(schema):
    s = Summary(group_by="outlet", date_column="date")
    s.add(_pred(["sanctions"], "against"), "en", {"outlet": "A", "date": "2022-01-10"})
    s.add(_pred([], "neutral"), "en", {"outlet": "A", "date": "2022-01-16"})
    s.add(_pred(["sanctions", "missiles"], "favor"), "ru", {"outlet": "B", "date": "2022-01-17"})
    s.add(_pred(["expansion"], "favor"), None, {"date": "not a date"})
    d = s.to_dict(schema)
    assert d["n"] == 4 and d["issue_shares"]["sanctions"] == 0.5 and d["no_issue_share"] == 0.25
    assert list(d["by_group"]) == ["A", "B", "(none)"]  # largest first
    assert d["by_group"]["A"]["stance_shares"] == {"favor": 0.0, "against": 0.5, "neutral": 0.5}
    assert d["by_week"]["2022-01-10"]["n"] == 2 and d["by_week"]["2022-01-17"]["issue_counts"]["missiles"] == 1
    assert d["undated"] == 1
    assert d["by_lang"]["ru"]["issue_shares"]["missiles"] == 1.0
    assert "by_group" not in Summary().to_dict(schema)  # only when asked for


def test_week_start_handles_dates_and_datetimes():
    import datetime as dt

    assert week_start(dt.date(2022, 2, 24)) == "2022-02-21"
    assert week_start(dt.datetime(2022, 2, 20, 23, 59)) == "2022-02-14"
    assert week_start(None) is None and week_start("2022-13-01") is None


def test_cli_report_writes_tables_and_plots(tiny_checkpoint, tmp_path, capsys):
    corpus = tmp_path / "news.jsonl"
    rows = [{"text": f"NATO drills near the border {i}. Sanctions on banks.", "lang": ["en", "ru", "de"][i % 3],
             "outlet": f"outlet-{i % 2}", "date": f"2022-01-{3 + 2 * i:02d}"} for i in range(12)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = tmp_path / "rep"
    code = main(parse_args(["--model", str(tiny_checkpoint), str(corpus), "-o", str(tmp_path / "out.jsonl"),
                            "--report", str(rep), "--group-by", "outlet", "--date-column", "date",
                            "--no-progress", "--route", "fp32"]))
    assert code == 0
    tagged = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for name in ("overall.png", "by_language.png", "by_group.png", "over_time.png"):
        assert (rep / name).read_bytes()[:8] == PNG, name
    md = (rep / "summary.md").read_text()
    for heading in ("## Overall", "## By language", "## By outlet", "## By week of `date`", "## Plots"):
        assert heading in md
    assert "![over_time](over_time.png)" in md
    # the tables agree with the tagged output
    stance = collections.Counter(r["stance"] for r in tagged)
    for s in ("favor", "against", "neutral"):
        assert f"| {s} | {stance[s]} | {100 * stance[s] / 12:.0f}% |" in md
    weeks = collections.Counter(week_start(r["date"]) for r in rows)
    for week, n in weeks.items():
        assert f"| {week} | {n} |" in md
    summary = json.loads((rep / "summary.json").read_text())
    assert set(summary["by_group"]) == {"outlet-0", "outlet-1"} and summary["undated"] == 0


def test_missing_matplotlib_names_the_extra(schema, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    s = Summary()
    s.add(_pred(["sanctions"], "against"), "en")
    with pytest.raises(ImportError, match=r"pip install 'security-talks-classifier\[report\]'"):
        write_corpus_report(s.to_dict(schema), schema, tmp_path)
    assert "## Overall" in (tmp_path / "summary.md").read_text()  # the tables were written first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]
