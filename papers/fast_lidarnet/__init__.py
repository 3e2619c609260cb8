"""Fast-LiDARNet (Liu et al., ICRA 2021): see README.md."""
