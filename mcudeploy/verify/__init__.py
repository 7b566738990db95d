"""Verification: the outputs the oracles expect (expected.py), the bit-exact comparison
(compare.py), the verdict of a run as a value (verdict.py), and the layer-by-layer localisation of
a mismatch (localise.py)."""
