"""Writes the cell plan of authored batch 10 (one line per paragraph to write): `python data/labels/plans/make_batch10.py`.

Per language 130 original paragraphs, spread over who reacts x how (stance) x register x issue as in
data/labels/COVERAGE.md, plus 25 parallel groups per writer (one paragraph in English and the writer's two
languages). Deterministic: the same file every time.
"""

import itertools
import json
import random
from pathlib import Path

WRITERS = {"w1": ("ru", "uk"), "w2": ("de", "pl"), "w3": ("fr", "it"), "w4": ("es", "pt"), "w5": ("zh", "ja"),
           "w6": ("ar", "tr")}
# who reacts -> {stance: count} per language (130 in all; third-person reported reactions are the centre of gravity)
CELLS = {
    "russia": {"favor": 22, "neutral": 6},
    "west": {"against": 22, "neutral": 6},
    "ukraine": {"against": 9, "neutral": 2},
    "china": {"favor": 7, "neutral": 3},
    "other_government": {"favor": 6, "against": 6, "neutral": 4},
    "analyst": {"favor": 6, "against": 6, "neutral": 7},
    "outlet": {"favor": 3, "against": 3, "neutral": 12},
}
REGISTERS = {
    "russia": ["wire", "statement", "interview", "social", "live_blog", "wire"],
    "west": ["wire", "statement", "interview", "live_blog", "social", "wire"],
    "ukraine": ["wire", "statement", "social", "interview"],
    "china": ["statement", "wire", "interview"],
    "other_government": ["wire", "statement", "interview", "social"],
    "analyst": ["analysis", "interview", "op_ed", "analysis"],
    "outlet": ["wire", "live_blog", "analysis", "wire"],
}
ISSUES = ["expansion", "missiles", "exercises", "sanctions", "expansion", "none", "exercises", "missiles",
          "china_alignment", "expansion+missiles", "none", "exercises+sanctions"]


def slots(rng, per_cell_scale=1.0):
    out = []
    for actor, stances in CELLS.items():
        regs = itertools.cycle(REGISTERS[actor])
        for stance, n in stances.items():
            for _ in range(round(n * per_cell_scale)):
                issue = "china_alignment" if actor == "china" and rng.random() < 0.7 else rng.choice(ISSUES)
                register = next(regs)
                if actor == "outlet" and stance != "neutral":
                    register = "op_ed"
                out.append({"actor": actor, "stance": stance, "register": register, "issue_focus": issue})
    rng.shuffle(out)
    return out


def main():
    rng = random.Random(10)
    rows = []
    for writer, langs in WRITERS.items():
        for lang in langs:
            for i, cell in enumerate(slots(rng), 1):
                rows.append({"slot": f"au10-{lang}-{i:03d}", "writer": writer, "lang": lang, **cell})
        for i, cell in enumerate(slots(rng, 25 / 130)[:25], 1):
            rows.append({"slot": f"au10-px-{writer}-{i:02d}", "writer": writer, "lang": "+".join(("en",) + langs),
                         **cell})
    path = Path(__file__).with_name("batch10.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} slots -> {path}")


if __name__ == "__main__":
    main()
