"""Models: the multi-resolution part detector (unary heatmaps), the spatial
model (priors, messages, marginals) and the DeepPose-style regressor."""
