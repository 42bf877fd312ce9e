import json
import re

import pytest

from infer.labels import LabelSchema
from synthetic_data import REPO, synthetic_records, write_jsonl
from train.data.records import DataError, check, load_records, main, sync_translations, validate_files
from train.data.splits import split_records

DATA_FILES = sorted((REPO / "data" / "labels").glob("*.jsonl"))


def good() -> dict:
    return dict(synthetic_records(n_groups=1)[0])


@pytest.mark.parametrize("change, message", [
    ({"stance": "pro"}, "unknown stance label 'pro'"),
    ({"issues": ["nukes"]}, "unknown issue label 'nukes'"),
    ({"text": "   "}, "empty text"),
    ({"lang": "english"}, "bad language code 'english'"),
    ({"lang": "xx"}, "bad language code 'xx'"),
    ({"origin": "scraped"}, "unknown origin 'scraped'"),
    ({"source": None}, "seed records need source"),
    ({"extra": 1}, "unknown field(s) ['extra']"),
    ({"issues": "expansion"}, "'issues' must be a list"),
    ({"text": 123}, "'text' must be a string, got int"),
    ({"text": "\u200b\u200c\ufeff "}, "empty text"),
    ({"actor": "nato"}, "unknown actor 'nato'"),
    ({"register": "blog"}, "unknown register 'blog'"),
])
def test_bad_record_names_file_and_line(tmp_path, schema, change, message):
    bad = {**good(), **change, "id": "bad"}
    path = write_jsonl(tmp_path / "d.jsonl", [good(), bad])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: {message}")):
        validate_files([path], schema)


def test_optional_actor_and_register_are_accepted_and_loaded(tmp_path, schema):
    rec = {**good(), "actor": "west", "register": "wire"}
    other = {**good(), "id": "other", "text": "another paragraph", "group": "g-other"}  # no actor: also valid
    path = write_jsonl(tmp_path / "d.jsonl", [rec, other])
    assert [r.get("actor") for r in validate_files([path], schema)] == ["west", None]
    assert load_records([path], schema)["actor"] == ["west", None]


def test_missing_field(tmp_path, schema):
    rec = good()
    del rec["group"]
    path = write_jsonl(tmp_path / "d.jsonl", [rec])
    with pytest.raises(DataError, match=re.escape(f"{path}:1: missing field(s) ['group']")):
        validate_files([path], schema)


def test_invalid_json_and_duplicates(tmp_path, schema):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good()) + "\n{not json\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: invalid JSON")):
        validate_files([path], schema)
    a, b = good(), {**good(), "text": "another text"}
    write_jsonl(path, [a, b])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: duplicate id {a['id']!r} (first at {path}:1)")):
        validate_files([path], schema)
    write_jsonl(path, [a, {**a, "id": "other", "text": a["text"].upper() + "  "}])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: duplicate text (id other) first at {path}:1")):
        validate_files([path], schema)


def test_empty_and_missing_files(tmp_path, schema):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match=re.escape(f"{empty}: no records (empty data file)")):
        validate_files([empty], schema)
    with pytest.raises(DataError, match="data file not found"):
        validate_files([tmp_path / "missing.jsonl"], schema)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path}: is a directory, not a JSON Lines data file")):
        validate_files([tmp_path], schema)


def test_load_records_goes_through_datasets(data_file, schema):
    import datasets

    ds = load_records([data_file], schema)
    assert isinstance(ds, datasets.Dataset)
    assert len(ds) == len(synthetic_records())
    assert ds.column_names == ["id", "text", "lang", "issues", "stance", "origin", "source", "group", "actor",
                               "register"]


def test_splits_are_grouped_seeded_and_complete(data_file, schema):
    ds = load_records([data_file], schema)
    a = split_records(ds, schema, val_size=0.2, test_size=0.2, seed=1)
    b = split_records(ds, schema, val_size=0.2, test_size=0.2, seed=1)
    assert {k: v["id"] for k, v in a.items()} == {k: v["id"] for k, v in b.items()}
    groups = {k: set(v["group"]) for k, v in a.items()}
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    assert sum(len(v) for v in a.values()) == len(ds)


def test_authored_train_only_and_train_langs(data_file, schema):
    ds = load_records([data_file], schema)
    s = split_records(ds, schema, val_size=0.2, test_size=0.2, seed=0, authored_train_only=True, train_langs=["en"])
    assert "authored" not in set(s["validation"]["origin"]) | set(s["test"]["origin"])
    assert set(s["train"]["lang"]) == {"en"}
    assert len(set(s["test"]["lang"])) == 3


def test_too_little_data_is_a_clear_error(tmp_path, schema):
    path = write_jsonl(tmp_path / "d.jsonl", synthetic_records(n_groups=2)[:3])
    ds = load_records([path], schema)
    with pytest.raises(DataError, match="too little data"):
        split_records(ds, schema, val_size=0.2, test_size=0.2, seed=0)


def test_encode_labels(schema):
    vec = schema.encode(["missiles", "china_alignment"], "against")
    assert vec == [0, 1, 0, 0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="unknown stance label 'pro'"):
        schema.encode([], "pro")


# --- the shipped dataset ---------------------------------------------------------------------------

def test_shipped_data_is_valid_and_meets_the_counts():
    schema = LabelSchema.from_yaml(REPO / "data" / "labels" / "schema.yaml")
    summary = check(DATA_FILES, schema, min_issue=60, min_stance=100)
    assert set(summary.by_origin) == {"seed", "translation", "authored"}
    assert summary.by_origin["authored"] >= 200
    translation_langs = {json.loads(l)["lang"] for f in DATA_FILES if "translation" in f.name
                         for l in f.read_text(encoding="utf-8").splitlines() if l.strip()}
    assert len(translation_langs) >= 6


def test_every_seed_paragraph_has_its_translations_in_the_same_group():
    records = [json.loads(l) for f in DATA_FILES for l in f.read_text(encoding="utf-8").splitlines() if l.strip()]
    seeds = {r["group"]: r for r in records if r["origin"] == "seed"}
    langs = {group: set() for group in seeds}
    for r in records:
        if r["origin"] == "translation":
            seed = seeds[r["group"]]
            assert (r["source"], r["issues"], r["stance"]) == (seed["source"], seed["issues"], seed["stance"]), r["id"]
            langs[r["group"]].add(r["lang"])
    assert len(seeds) >= 90
    assert {group: len(found) for group, found in langs.items() if len(found) < 6} == {}


def test_check_cli(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "records: OK" in out and "china_alignment" in out


def test_check_cli_fails_on_bad_file(tmp_path, caplog):
    rec = {**good(), "stance": "pro"}
    path = write_jsonl(tmp_path / "d.jsonl", [rec])
    assert main(["check", str(path), "--schema", str(REPO / "data/labels/schema.yaml")]) == 1  # the check's finding
    assert f"{path}:1: unknown stance label 'pro'" in caplog.text


def test_check_cli_bad_usage_is_2(tmp_path, caplog):
    assert main(["check", str(tmp_path / "nope.jsonl"), "--schema", str(REPO / "data/labels/schema.yaml")]) == 2
    assert "nope.jsonl" in caplog.text
    with pytest.raises(SystemExit) as exc:
        main(["check", "--no-such-flag"])
    assert exc.value.code == 2


def test_sync_translations_copies_seed_labels_and_check_enforces_them(tmp_path, schema):
    records = synthetic_records(n_groups=3)
    seed = next(r for r in records if r["origin"] == "seed")
    translations = [dict(r, issues=None, stance=None) for r in records if r["origin"] == "translation"]
    seed_file = write_jsonl(tmp_path / "seed.jsonl", [r for r in records if r["origin"] == "seed"])
    tr_file = write_jsonl(tmp_path / "translation_xx.jsonl", translations)
    assert sync_translations([seed_file, tr_file]) == len(translations)
    synced = [json.loads(l) for l in tr_file.read_text(encoding="utf-8").splitlines()]
    mine = next(r for r in synced if r["group"] == seed["group"])
    assert (mine["issues"], mine["stance"]) == (seed["issues"], seed["stance"])
    check([seed_file, tr_file], schema)
    assert sync_translations([seed_file, tr_file]) == 0  # idempotent

    synced[0]["stance"] = next(s for s in schema.stance if s != synced[0]["stance"])
    write_jsonl(tr_file, synced)
    with pytest.raises(DataError, match=f"translation {synced[0]['id']}: .*differ from its seed"):
        check([seed_file, tr_file], schema)


def test_binary_file_names_file_line_and_offset(tmp_path, capsys, caplog):
    path = tmp_path / "d.jsonl"
    path.write_bytes((json.dumps(good()) + "\n").encode() + b"\x89PNG\r\n\x1a\n\x00\xff")
    assert main(["check", str(path), "--schema", str(REPO / "data/labels/schema.yaml")]) == 1
    err = capsys.readouterr().err + caplog.text
    assert f"{path}:2: not UTF-8 text (byte 0x89 at byte offset {len(json.dumps(good())) + 1}" in err
    assert "Traceback" not in err


def test_lone_surrogate_names_file_and_line(tmp_path, schema):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good()) + "\n" + json.dumps({**good(), "id": "x2", "text": "bad \ud800 text"}) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: 'text' is not valid Unicode")):
        validate_files([path], schema)


def test_near_copies_within_files_across_groups_and_against_an_evaluation_set():
    from train.data.records import near_copies

    base = {"lang": "en", "issues": [], "stance": "neutral", "origin": "authored", "source": None}
    records = [
        {**base, "id": "a", "group": "a", "text": "NATO rejected Moscow's demand for a ban on enlargement on Wednesday."},
        {**base, "id": "b", "group": "b", "text": "NATO rejected Moscow's demand for a ban on enlargement on Thursday."},
        {**base, "id": "c", "group": "a", "text": "NATO rejected Moscow's demand for a ban on enlargement, Wednesday."},
        {**base, "id": "d", "group": "d", "text": "Beijing and Moscow signed a long joint statement on partnership."},
    ]
    pairs = near_copies(records, threshold=0.6)  # a-c share a group (a translation pair): not listed
    assert [(x, y) for x, y, _ in pairs] == [("a", "b"), ("b", "c")] and pairs[0][2] > pairs[1][2]
    dev = [{**base, "id": "rn1", "group": "rn1", "text": "Beijing and Moscow signed a long joint statement on partnership!"}]
    assert [(x, y) for x, y, _ in near_copies(records, dev, threshold=0.8)] == [("d", "rn1")]
