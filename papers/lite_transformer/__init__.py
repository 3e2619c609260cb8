"""Lite Transformer (Wu et al., ICLR 2020): see README.md."""
