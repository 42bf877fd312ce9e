"""Evaluation: the report of a run against baselines (`evaluation`, `python -m train.evaluate`), metrics,
baselines with their frozen-backbone vectors, the report files, and cross-validation (`python -m train.evaluate.crossval`).
"""
