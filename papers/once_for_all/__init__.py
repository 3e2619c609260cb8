"""Once-for-All (Cai et al., ICLR 2020): see README.md."""
