"""Data: dataset readers, person-centred crops, the compact cache,
batched augmentation and heatmap targets."""
