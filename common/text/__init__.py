"""Text utilities shared by the language papers (Lite Transformer, then SpAtten).

* :mod:`common.text.decode`: greedy and beam-search decoding over an incremental cache.
"""
