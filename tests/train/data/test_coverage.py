"""The coverage plan's tables (train.data.coverage) on a tiny fixture."""

from infer.labels import LabelSchema
from train.data.coverage import coverage_tables

SCHEMA = LabelSchema(("expansion", "sanctions"), ("favor", "against", "neutral"),
                     actors=("russia", "west"), registers=("wire", "op_ed"))


def rec(actor, stance, register, issues, lang, origin="authored"):
    return {"actor": actor, "stance": stance, "register": register, "issues": issues, "lang": lang, "origin": origin}


def test_counts_thin_and_empty_cells_and_unannotated_records():
    records = [rec("russia", "favor", "wire", ["expansion"], "ru")] * 12 + [
        rec("west", "against", "op_ed", ["expansion", "sanctions"], "de"),
        {"stance": "neutral", "issues": [], "lang": "en", "origin": "seed"},  # no actor or register
        {"stance": "neutral", "issues": [], "lang": "ru", "origin": "translation"},
    ]
    text = coverage_tables(records, SCHEMA, thin=10)
    assert "| russia | 12 | . | . | 12 |" in text  # a full cell, two empty ones
    assert "| west | . | 1! | . | 1 |" in text  # a thin cell
    assert "| (none) | . | . | 2! | 2 |" in text  # records without actor
    assert "| expansion | 12 | 1! | . | 13 |" in text and "| sanctions | . | 1! | . | 1 |" in text  # issue x actor
    assert "| no issue | . | . | 2! | 2 |" in text
    language = text.split("### Language")[1]
    assert "| ru | 12 | . | . | 12 |" in language  # the translation is left out of the language table
    assert "| en | . | . | 1! | 1 |" in language
