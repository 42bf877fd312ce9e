"""The classifier: building it from a backbone and its loss (`build`), top-layer training on cached states
(`layer_cache`), and the fast dropout masks used in training (`dropout`).
"""
