"""One name per idea, and the words the lab shows for each (code, JSON, CLI, app, lessons).

The paper's words: a resolution **bank**, the detector's **unary** heatmaps, the
**prior** p(A | v), the **message** from v to A, and A's **marginal**.
"""

# The predictors a photo goes through, in the order the lab shows them.
METHODS = ("unary", "marginal", "regressor")

# Every method a table may hold (the eval JSON's "methods" keys), with its label.
METHOD_LABELS = {
    "unary": "Detector alone (unary)",
    "marginal": "Detector + spatial model (marginal)",
    "unary_flip": "Detector alone, flip test",
    "marginal_flip": "Detector + spatial model, flip test",
    "unary_multiscale": "Detector alone, multi-scale + flip test",
    "marginal_multiscale": "Detector + spatial model, multi-scale + flip test",
    "regressor": "Regressor (DeepPose-style)",
    "mean_pose": "Mean pose (baseline)",
}

# The same, short enough for a table's column header (the long label goes in the column's help).
METHOD_SHORT = {
    "unary": "Unary",
    "marginal": "Marginal",
    "unary_flip": "Unary, flip",
    "marginal_flip": "Marginal, flip",
    "unary_multiscale": "Unary, multi-scale",
    "marginal_multiscale": "Marginal, multi-scale",
    "regressor": "Regressor",
    "mean_pose": "Mean pose",
}

CONFIDENCE_HELP = {
    "unary": "share of the detector's heatmap in its peak pixel (softmax model) or the peak's height "
             "(MSE model, trained towards 1 at a joint and 0 elsewhere)",
    "marginal": "share of the marginal's probability in its peak pixel (1 = all of it; 1/1024 = spread evenly)",
    "regressor": "none: the regressor outputs coordinates only",
}

# The prior kernel's notation, in code docstrings, lessons and the app: p(A | v) = SoftPlus(W_{A|v}).
PRIOR_TEX = r"\mathrm{SoftPlus}(W_{A|v})"
PRIOR_HTML = "SoftPlus(W<sub>A|v</sub>)"
