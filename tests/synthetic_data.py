"""Small synthetic labeled records (templated sentences) for fast tests of the data and training code."""

import json
import random
from pathlib import Path

from infer.labels import LabelSchema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "data" / "labels" / "schema.yaml"

_TOPICS = {
    "expansion": "NATO enlargement and Ukraine membership",
    "missiles": "intermediate-range missiles near the border",
    "exercises": "troop drills and exercises near the border",
    "sanctions": "new sanctions on Russian banks",
    "china_alignment": "the partnership between Moscow and Beijing",
}
_STANCE = {
    "favor": "Moscow insists the demands are justified",
    "against": "Washington rejects the demands firmly",
    "neutral": "the talks are scheduled for Monday",
}
_LANGS = {"en": "", "ru": "Россия НАТО", "de": "Sanktionen OTAN"}

def synthetic_records(n_groups: int = 24, seed: int = 0) -> list[dict]:
    """Records in 3 languages per group (seed + 2 'translations'), labels drawn at random."""
    rng = random.Random(seed)
    schema = LabelSchema.from_yaml(SCHEMA_PATH)
    out = []
    for g in range(n_groups):
        issues = [i for i in schema.issues if rng.random() < 0.35]
        stance = schema.stance[g % 3]
        body = ", ".join(_TOPICS[i] for i in issues) or "a diplomatic schedule"
        for j, (lang, extra) in enumerate(_LANGS.items()):
            origin = "seed" if j == 0 else "translation"
            out.append({
                "id": f"r{g:03d}-{lang}", "text": f"{extra} Paragraph {g}: {body}; {_STANCE[stance]}. {extra}".strip(),
                "lang": lang, "issues": issues, "stance": stance, "origin": origin,
                "source": f"00{g % 5}_x.txt#{g + 1}", "group": f"g{g:03d}",
            })
    for a in range(6):
        out.append({"id": f"a{a}", "text": f"Authored note {a} about sanctions and drills", "lang": "en",
                    "issues": ["sanctions", "exercises"], "stance": schema.stance[a % 3], "origin": "authored",
                    "source": None, "group": f"a{a}"})
    return out

def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path
