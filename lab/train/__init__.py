"""Training: the paper's three stages (detector, spatial, joint) and the regressor."""
