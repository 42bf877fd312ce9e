"""Split the five seed articles into paragraphs (provenance of ``seed.jsonl``).

Run from the repository root::

    python data/labels/extract_seed.py ../shared/seeds > /tmp/seed_paragraphs.jsonl

A paragraph is a non-empty line; ``source`` is ``"<file name>#<n>"`` with ``n`` counting
non-empty lines from 1. Boilerplate lines (section labels, repeated headlines, photo
credits and captions, comment forms, captchas, share counters, related links) are left
out by number; GUIDELINES.md lists them. Labels are added by hand afterwards.
"""

import json
import sys
from pathlib import Path

# file prefix -> {paragraph number: why it is left out}
EXCLUDED = {
    "000": {2: "section label", 4: "repeated headline", 5: "photo credit", 10: "comment form", 11: "captcha"},
    "001": {5: "two-word subheading", 21: "comment form", 22: "comment form"},
    "002": {14: "photo caption", 24: "comment form", 25: "comment form"},
    "003": {17: "related-article link", 18: "social media promotion"},
    "004": {1: "dateline", 2: "share counters", 4: "repeated headline", 5: "photo credit",
            36: "category label", 37: "comment form"},
}


def paragraphs(seed_dir: Path):
    for path in sorted(seed_dir.glob("*.txt")):
        prefix = path.name[:3]
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for n, text in enumerate(lines, start=1):
            if n in EXCLUDED.get(prefix, {}):
                continue
            yield {"id": f"seed-{prefix}-{n:02d}", "text": text, "source": f"{path.name}#{n}",
                   "group": f"g-{prefix}-{n:02d}"}


if __name__ == "__main__":
    for record in paragraphs(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/seeds")):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
