"""Labeled records: validation and loading (`records`), grouped splits, context pairs, coverage tables.

`python -m train.data check|near-copies|coverage|sync-translations` (see `train.data.records.main`).
"""
