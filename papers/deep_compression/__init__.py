"""Deep Compression (Han, Mao, Dally, ICLR 2016): pruning, trained quantization, Huffman coding.

Stages (see ``dvc.yaml``):

* ``train_baseline``: the LeNet-300-100 and LeNet-5 reference networks of Table 1 on MNIST.
* ``report``: ``reports/deep_compression/README.md`` and ``claims.json``.
"""
