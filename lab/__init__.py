"""pose-lab: Tompson et al. (NIPS 2014) rebuilt piece by piece.

Layout (data -> models -> training -> evaluation -> app):
  lab.data     datasets, crops, cache, augmentation, heatmap targets
  lab.models   part detector (banks -> unary), spatial model (prior, message,
               marginal), DeepPose-style regressor
  lab.train    the paper's three training stages and the regressor
  lab.eval     PCK metrics and `pose-lab eval`
  lab.app      the Streamlit lab (thin views over the library)
"""
__version__ = "0.1.0"
