"""Deep Compression (Han, Mao, Dally, ICLR 2016): pruning, trained quantization, Huffman coding.

Stages (see ``dvc.yaml``; each a :func:`papers.deep_compression.stage.dc_stage`):

* ``train_baseline``: the reference networks of Table 1 (the two LeNets, the VGG-style analogue).
* ``prune``, ``compress``: the three stages of the method, per network (Tables 1-3).
* ``tradeoff``, ``bitwidth``, ``speedup``: Figure 6, Table 6 and Figure 8, Figures 9-10.
* ``imagenet``: the AlexNet and VGG-16 rows (``paper`` profile).
* ``report``: ``reports/deep_compression/`` and ``metrics/deep_compression/derived.json``.
"""
