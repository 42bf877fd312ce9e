"""Seeded, grouped, stratified train/validation/test splits (and grouped K-fold for cross-validation).

A `group` (a seed paragraph and all its translations) never straddles two splits, so no translation
of a test paragraph is ever trained on.
"""

from __future__ import annotations

import collections
import warnings

import numpy as np

from infer.labels import LabelSchema
from train.data.records import DataError


def _strata(ds, schema: LabelSchema) -> np.ndarray:
    """Stratification key per record: stance plus its rarest issue (rare labels spread over splits)."""
    freq = collections.Counter(i for issues in ds["issues"] for i in issues)
    keys = []
    for stance, issues in zip(ds["stance"], ds["issues"]):
        rarest = min(issues, key=lambda i: freq[i]) if issues else "none"
        keys.append(f"{stance}|{rarest}")
    return np.array(keys)


def _take_fold(indices: np.ndarray, strata: np.ndarray, groups: np.ndarray, size: float, seed: int,
               n_splits: int | None = None, fold: int = 0):
    """Split `indices` into (rest, held): fold `fold` of a grouped, stratified K-fold (K = 1/size)."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = n_splits or max(2, round(1.0 / size))
    n_groups = len(set(groups[indices]))
    if n_groups < n_splits:
        raise DataError(f"cannot split {n_groups} groups into {n_splits} folds: too little data for size={size}")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "least populated class has fewer members than n_splits": stratify as far as the data allows.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        folds = cv.split(indices, strata[indices], groups[indices])
        for _ in range(fold):
            next(folds)
        rest, held = next(folds)
    return indices[rest], indices[held]


def split_records(ds, schema: LabelSchema, *, val_size: float, test_size: float, seed: int,
                  authored_train_only: bool = False, train_langs: list[str] | None = None,
                  cv_folds: int | None = None, cv_fold: int = 0):
    """Seeded, grouped, stratified train/validation/test splits.

    Every record of a `group` (a seed paragraph and its translations) lands in one split. Validation
    and test draw on seed and translation records, and on authored records unless
    `authored_train_only`. `train_langs` keeps only those languages in train (transfer runs).
    With `cv_folds`, the test split is fold `cv_fold` of a grouped K-fold instead of `test_size`.

    Returns:
        `datasets.DatasetDict` with `train`, `validation`, `test`.
    """
    import datasets

    groups = np.array(ds["group"])
    strata = _strata(ds, schema)
    origin = np.array(ds["origin"])
    eligible = np.ones(len(ds), dtype=bool) if not authored_train_only else origin != "authored"
    pool = np.flatnonzero(eligible)
    rest, test = _take_fold(pool, strata, groups, test_size, seed, n_splits=cv_folds, fold=cv_fold)
    rest, val = _take_fold(rest, strata, groups, val_size / (1.0 - test_size), seed + 1)
    train = np.sort(np.concatenate([rest, np.flatnonzero(~eligible)]))
    if train_langs:
        langs = np.array(ds["lang"])
        train = train[np.isin(langs[train], train_langs)]
    splits = datasets.DatasetDict(
        train=ds.select(train), validation=ds.select(np.sort(val)), test=ds.select(np.sort(test))
    )
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"the {name} split is empty: add data or change data.val_size/test_size/train_langs")
    return splits
