"""Context pairs: longer training paragraphs whose stance sits in one part of the text.

Real news paragraphs are long: a dateline, the state of the talks or a schedule, then the speaker's position
in one clause. Our own paragraphs are shorter and say their stance throughout. A context pair joins a training
paragraph with a neutral, issue-free training paragraph of the same language (before or after it, at random)
and keeps the first paragraph's labels: under the guidelines a passage with no position on the demands and no
issue adds neither an issue nor a stance (GUIDELINES.md 4.1, rules 4-6). Pairs are drawn from the training
split only (after the grouped split, so no validation or test text enters train), never join two records of
one group, and are kept only where the joined text fits `data.max_length` tokens (truncation would cut the
labeled part away).

    >>> from datasets import Dataset
    >>> train = Dataset.from_list([
    ...     {"id": "a", "text": "NATO rejected the demands.", "lang": "en", "issues": ["expansion"],
    ...      "stance": "against", "origin": "authored", "source": None, "group": "a"},
    ...     {"id": "b", "text": "The talks lasted eight hours.", "lang": "en", "issues": [],
    ...      "stance": "neutral", "origin": "authored", "source": None, "group": "b"}])
    >>> pairs = context_pairs(train, fraction=1.0, seed=0, fits=lambda texts: [True] * len(texts))
    >>> len(pairs), pairs["text"][0] in ("NATO rejected the demands. The talks lasted eight hours.",
    ...                                  "The talks lasted eight hours. NATO rejected the demands.")
    (1, True)
    >>> pairs["stance"][0], pairs["issues"][0], pairs["id"][0]
    ('against', ['expansion'], 'a+ctx:b')
"""

from __future__ import annotations

import collections
import logging
from typing import Callable

import numpy as np

logger = logging.getLogger(__name__)

# Scripts written without spaces between sentences.
_NO_SPACE = {"zh", "ja"}
PAIR_SEP = "+ctx:"  # a pair's id: <record id>+ctx:<context id>


def context_pairs(train, fraction: float, seed: int, fits: Callable[[list[str]], list[bool]]):
    """About `fraction` x len(train) context pairs (a `datasets.Dataset` with train's columns).

    Args:
        train: the training split (records with `text`, `lang`, `issues`, `stance`, `group`, `id`).
        fraction: pairs to draw per training record (targets drawn without replacement up to 1.0).
        seed: the run's seed (targets, partners and order are drawn from it).
        fits: maps joined texts to whether each fits the token limit.
    """
    import datasets

    rng = np.random.default_rng(seed)
    records = train.to_list()  # plain lists: indexing a dataset's column reads Arrow on every access
    texts, langs, groups, ids = ([r[k] for r in records] for k in ("text", "lang", "group", "id"))
    contexts: dict[str, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(records):
        if r["stance"] == "neutral" and not r["issues"]:
            contexts[langs[i]].append(i)
    n = int(round(fraction * len(train)))
    targets = np.concatenate([rng.permutation(len(train)) for _ in range(-(-n // len(train)))])[:n] if n else []
    picked: list[tuple[int, int, str]] = []
    for t in targets:
        pool = [c for c in contexts.get(langs[t], []) if groups[c] != groups[t]]
        if not pool:
            continue
        c = pool[rng.integers(len(pool))]
        sep = "" if langs[t] in _NO_SPACE else " "
        parts = (texts[c], texts[t]) if rng.random() < 0.5 else (texts[t], texts[c])
        picked.append((int(t), c, sep.join(p.strip() for p in parts)))
    keep = fits([text for _, _, text in picked]) if picked else []
    rows = []
    for (t, c, text), ok in zip(picked, keep):
        if ok:
            rows.append({**records[t], "text": text, "id": f"{ids[t]}{PAIR_SEP}{ids[c]}"})
    logger.info("Context pairs: %d added to %d training records (%d drawn, %d too long, %d without a same-language "
                "context)", len(rows), len(train), n, len(picked) - len(rows), n - len(picked))
    return datasets.Dataset.from_list(rows, features=train.features) if rows else train.select([])


def token_fit(tokenizer, max_length: int) -> Callable[[list[str]], list[bool]]:
    """`fits` for `context_pairs`: the text's tokens (special tokens included) are at most `max_length`."""
    def fits(texts: list[str]) -> list[bool]:
        return [len(ids) <= max_length for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return fits
