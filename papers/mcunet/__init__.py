"""MCUNet (Lin et al., NeurIPS 2020) and MCUNetV2 (NeurIPS 2021): deployment on microcontrollers.

Stages (see ``dvc.yaml``): ``train`` (the table networks on the colour digits), ``deploy`` (int8
conversion, TF-Lite Micro peer, memory plans, C code, Cortex-M7 emulation), ``ablation``
(instructions per optimisation) and ``report``. The engine itself lives in :mod:`common.mcu`.
"""
