"""kew's head-to-head benchmark: ``python -m bench`` (see bench/README.md).

Nothing is imported here: the driver subpackage runs inside each peer's own environment, where
only the standard library and that peer are installed.
"""
