"""SpAtten (Wang et al., HPCA 2021): see README.md."""
