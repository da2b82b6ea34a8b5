"""Evaluation: PCK metrics, batched prediction, and `pose-lab eval`."""
