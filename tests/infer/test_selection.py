"""What to label next: uncertainty, bounded buffer, diversity, output that `train.data check` accepts."""

import json

import pytest

from infer.__main__ import parse_args
from infer.cli import main
from infer.prediction import Prediction
from infer.selection import LabelingSelector, uncertainty
from train.data.records import DataError, check, validate_record


def _pred(schema, stance_top=0.4, issue=0.5, text="t"):
    rest = (1 - stance_top) / 2
    return Prediction(text, [], {n: issue for n in schema.issues}, "favor",
                      {"favor": stance_top, "against": rest, "neutral": rest})


def test_uncertainty_is_highest_at_the_threshold_and_a_flat_stance(schema):
    t = [0.5] * len(schema.issues)
    sure = uncertainty(_pred(schema, 0.98, 0.02), schema, t)[0]
    unsure = uncertainty(_pred(schema, 0.34, 0.5), schema, t)[0]
    half = uncertainty(_pred(schema, 0.98, 0.5), schema, t)[0]
    assert sure < 0.1 and unsure > 0.95 and sure < half < unsure
    # the distance is scaled by the side of the threshold: 0.8 vs t=0.9 is as close as 0.1 vs t=0.2 ... per side
    far_above = uncertainty(_pred(schema, 0.98, 0.99), schema, [0.9] * len(schema.issues))[2]
    assert far_above == pytest.approx(1 - (0.99 - 0.9) / 0.1)


def test_buffer_is_bounded_and_keeps_the_most_uncertain(schema):
    sel = LabelingSelector(3, schema, [0.5] * len(schema.issues), pool_factor=2)
    for i in range(200):
        top = 0.34 + (i % 50) / 100  # 50 levels of stance confidence
        sel(f"f:{i}", {"lang": "en", "url": f"https://site{i}.example/a"}, f"text {i}", _pred(schema, top, 0.02))
        assert len(sel._heap) <= 6
    picks = sel.select()
    assert len(picks) == 3
    assert all(w["stance_uncertainty"] > 0.97 for _, w in picks)  # only the flattest stances survived


def test_picks_spread_over_languages_and_sources_and_skip_labeled(schema):
    labeled = {"already labeled paragraph"}
    sel = LabelingSelector(4, schema, [0.5] * len(schema.issues), labeled_texts=labeled)
    for i in range(20):  # English from one outlet: the most uncertain of all
        sel(f"f:{i}", {"lang": "en", "source": "outlet-a"}, f"english {i}", _pred(schema, 0.34, 0.5))
    sel("f:20", {"lang": "ru", "source": "outlet-b"}, "russian", _pred(schema, 0.5, 0.3))
    sel("f:21", {"lang": "zh", "source": "outlet-c"}, "chinese", _pred(schema, 0.55, 0.3))
    sel("f:22", {"lang": "en", "source": "outlet-a", "group": "g1"}, "grouped one", _pred(schema, 0.34, 0.5))
    sel("f:23", {"lang": "de", "source": "outlet-d", "group": "g1"}, "grouped two", _pred(schema, 0.34, 0.5))
    sel("f:24", {"lang": "en", "source": "outlet-z"}, "Already  labeled paragraph", _pred(schema, 0.34, 0.5))
    picks = [r for r, _ in sel.select()]
    langs = [r["lang"] for r in picks]
    assert sorted(langs) == ["de", "en", "ru", "zh"]  # not four English paragraphs of outlet-a
    assert "Already  labeled paragraph" not in [r["text"] for r in picks]
    assert sel.n_skipped == 1


def test_cli_output_passes_the_data_check_after_review(tiny_checkpoint, tmp_path, schema, caplog):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"text": f"NATO drills near the border number {i}. Sanctions on banks {i}.", "lang": ["en", "ru", "de"][i % 3],
             "url": f"https://outlet{i % 4}.example/{i}", "date": f"2022-01-{i + 1:02d}"} for i in range(12)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "to_label.jsonl"
    code = main(parse_args(["--model", str(tiny_checkpoint), str(corpus), "--select-for-labeling", "5", "-o", str(out),
                            "--labeled-dir", "", "--no-progress", "--route", "fp32"]))
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5 and len({r["id"] for r in records}) == 5
    assert all(r["origin"] == "reviewed" and r["source"].startswith("https://outlet") for r in records)
    assert set(records[0]) == {"id", "text", "lang", "issues", "stance", "origin", "source", "group"}
    why = [json.loads(line) for line in (tmp_path / "to_label.jsonl.scores.jsonl").read_text().splitlines()]
    assert [w["id"] for w in why] == [r["id"] for r in records] and "uncertainty" in why[0]
    # a person reviews: corrects the labels, then the file validates as training data
    records[0]["issues"], records[0]["stance"] = ["exercises", "sanctions"], "neutral"
    reviewed = tmp_path / "reviewed_1.jsonl"
    reviewed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    summary = check([reviewed], schema)
    assert summary.by_origin == {"reviewed": 5}
    assert main(parse_args(["--model", str(tiny_checkpoint), str(corpus), "--select-for-labeling", "2",
                            "--no-progress"])) == 2
    assert "give the file with -o" in caplog.text


def test_reviewed_origin_validates(schema):
    rec = {"id": "rev-1", "text": "x", "lang": "en", "issues": [], "stance": "neutral", "origin": "reviewed",
           "source": "https://example.org/a", "group": "rev-1"}
    assert validate_record(rec, schema, "f:1") is rec
    with pytest.raises(DataError, match="f:2: reviewed records need source"):
        validate_record({**rec, "source": None}, schema, "f:2")
    with pytest.raises(DataError, match="bad language code ''"):
        validate_record({**rec, "lang": ""}, schema, "f:3")  # a corpus row without lang: the reviewer sets it
