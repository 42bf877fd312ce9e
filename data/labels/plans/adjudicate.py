"""Apply the adjudication of a second labeling to the data files: `python data/labels/plans/adjudicate.py
SECOND_LABELS.jsonl ... --keep ID ...`.

For every paragraph where the second labels differ from the first (issues, stance or actor), the second
labels are taken, except for the ids given with --keep (the first labels stand). The decisions of batch 10 are
recorded in data/labels/COVERAGE.md. Files are rewritten in place, line order kept.
"""

import argparse
import glob
import json


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("labels", nargs="+")
    p.add_argument("--keep", nargs="*", default=[], help="ids whose first labels stand")
    args = p.parse_args()
    second = {}
    for path in args.labels:
        for line in open(path, encoding="utf-8"):
            if line.strip():
                s = json.loads(line)
                second[s["id"]] = s
    changed = []
    for path in sorted(glob.glob("data/labels/authored_10_*.jsonl")):
        rows = [json.loads(line) for line in open(path, encoding="utf-8")]
        for r in rows:
            s = second.get(r["id"])
            if s is None or r["id"] in args.keep:
                continue
            new = {"issues": s["issues"], "stance": s["stance"], "actor": s["actor"]}
            old = {k: r.get(k) for k in new}
            if new != old:
                r.update(new)
                changed.append((r["id"], old, new))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for rec_id, old, new in changed:
        diff = {k: f"{old[k]} -> {new[k]}" for k in new if old[k] != new[k]}
        print(rec_id, diff)
    print(f"{len(changed)} record(s) changed")


if __name__ == "__main__":
    main()
