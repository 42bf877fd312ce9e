"""The coverage plan's tables: labeled records counted by the axes that decide stance in real coverage.

Who reacts (`actor`) x how they react (`stance`: insist or support -> favor, reject or criticise -> against,
report without taking a side -> neutral), the register, the issue and the language. Empty cells show as `.`
and thin ones (fewer than `thin` records) carry a `!`, so the next batch of writing can be planned from them
(data/labels/COVERAGE.md). Records without the optional `actor` / `register` are counted as `(none)`.

    python -m train.data coverage [FILES...] [--thin 10]
"""

from __future__ import annotations

import collections
from typing import Any, Iterable, Sequence

from infer.labels import LabelSchema

NONE = "(none)"


def count(records: Iterable[dict[str, Any]], row_key, col_key) -> dict[str, collections.Counter]:
    """{row value: Counter(column values)}; a key function may return a list (a record in several rows)."""
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records:
        rows, cols = row_key(r), col_key(r)
        for row in rows if isinstance(rows, list) else [rows]:
            for col in cols if isinstance(cols, list) else [cols]:
                table[row][col] += 1
    return table


def render(title: str, table: dict[str, collections.Counter], rows: Sequence[str], cols: Sequence[str],
           thin: int) -> str:
    """A Markdown table with a total column; `.` for an empty cell, `N!` for a thin one."""
    def cell(n: int) -> str:
        return "." if n == 0 else f"{n}!" if n < thin else str(n)

    present = [r for r in rows if r in table] + sorted(r for r in table if r not in rows)
    lines = [f"### {title}", "", "| | " + " | ".join(cols) + " | all |", "|---" * (len(cols) + 2) + "|"]
    for row in present:
        counts = table[row]
        lines.append(f"| {row} | " + " | ".join(cell(counts[c]) for c in cols) + f" | {sum(counts.values())} |")
    return "\n".join(lines) + "\n"


def coverage_tables(records: Sequence[dict[str, Any]], schema: LabelSchema, thin: int = 10) -> str:
    """The four tables of the coverage plan, as Markdown.

    Example:
        >>> schema = LabelSchema(("expansion",), ("favor", "against", "neutral"), actors=("russia", "west"),
        ...                      registers=("wire",))
        >>> recs = [{"actor": "west", "stance": "against", "register": "wire", "issues": ["expansion"],
        ...          "lang": "de", "origin": "authored"}]
        >>> print(coverage_tables(recs, schema).splitlines()[6])
        | west | . | 1! | . | 1 |
    """
    originals = [r for r in records if r.get("origin") != "translation"]
    actors, registers = list(schema.actors) + [NONE], list(schema.registers) + [NONE]
    stance = list(schema.stance)
    issues = list(schema.issues) + ["no issue"]
    langs = sorted({r["lang"] for r in originals}, key=lambda lang: -sum(r["lang"] == lang for r in originals))
    actor = lambda r: r.get("actor") or NONE  # noqa: E731
    parts = [
        render("Who reacts x how (stance), all records", count(records, actor, lambda r: r["stance"]),
               actors, stance, thin),
        render("Register x stance, all records", count(records, lambda r: r.get("register") or NONE,
                                                      lambda r: r["stance"]), registers, stance, thin),
        render("Issue x who reacts, all records", count(records, lambda r: list(r["issues"]) or ["no issue"], actor),
               issues, actors, thin),
        render("Language x who reacts, original paragraphs (translations of seeds left out)",
               count(originals, lambda r: r["lang"], actor), langs, actors, thin),
    ]
    legend = f"`.` empty cell, `N!` fewer than {thin} records; {len(records)} records, {len(originals)} originals.\n"
    return legend + "\n" + "\n".join(parts)
