"""Agreement between the first labels (data/labels/*.jsonl) and an independent second labeling.

    python data/labels/plans/agreement.py SECOND_LABELS.jsonl [...]

Prints stance agreement, Cohen's kappa and per-class F1 (first labels as reference), issue micro-F1 and
per-issue agreement, actor agreement, and the disagreements (id, first vs second) to resolve.
"""

import glob
import json
import sys

from sklearn.metrics import cohen_kappa_score, f1_score

ISSUES = ["expansion", "missiles", "exercises", "sanctions", "china_alignment"]


def main(paths):
    first = {}
    for f in glob.glob("data/labels/*.jsonl"):
        for line in open(f, encoding="utf-8"):
            r = json.loads(line)
            first[r["id"]] = r
    second = [json.loads(line) for p in paths for line in open(p, encoding="utf-8") if line.strip()]
    second = [s for s in second if s["id"] in first]
    a = [first[s["id"]] for s in second]
    n = len(second)
    stance_a, stance_b = [r["stance"] for r in a], [s["stance"] for s in second]
    print(f"{n} paragraphs labeled twice")
    print(f"stance: agreement {sum(x == y for x, y in zip(stance_a, stance_b)) / n:.3f}, "
          f"Cohen's kappa {cohen_kappa_score(stance_a, stance_b):.3f}")
    for label in ("favor", "against", "neutral"):
        f1 = f1_score([x == label for x in stance_a], [y == label for y in stance_b])
        print(f"  {label:<8} F1 {f1:.3f} (first {stance_a.count(label)}, second {stance_b.count(label)})")
    ya = [[i in r["issues"] for i in ISSUES] for r in a]
    yb = [[i in s["issues"] for i in ISSUES] for s in second]
    print(f"issues: micro-F1 {f1_score(ya, yb, average='micro'):.3f}, exact set {sum(x == y for x, y in zip(ya, yb)) / n:.3f}")
    for k, issue in enumerate(ISSUES):
        col_a, col_b = [x[k] for x in ya], [y[k] for y in yb]
        print(f"  {issue:<16} F1 {f1_score(col_a, col_b):.3f} (first {sum(col_a)}, second {sum(col_b)})")
    actors = [(r.get("actor"), s.get("actor")) for r, s in zip(a, second) if r.get("actor")]
    print(f"actor: agreement {sum(x == y for x, y in actors) / len(actors):.3f} over {len(actors)}")
    print("\nstance disagreements:")
    for r, s in zip(a, second):
        if r["stance"] != s["stance"]:
            print(f"  {r['id']}: first {r['stance']} / second {s['stance']}  ({s.get('note', '')})")


if __name__ == "__main__":
    main(sys.argv[1:])
