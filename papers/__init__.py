"""One importable folder per paper; each builds only on ``common`` (never on another paper)."""
