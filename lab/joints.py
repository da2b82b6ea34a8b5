"""The LSP 14-joint skeleton: names, left/right pairs, groups and edges.

Left and right are the person's own (person-centric), as in LSP and LSPET.
"""

NAMES = (
    "right ankle", "right knee", "right hip", "left hip", "left knee", "left ankle",
    "right wrist", "right elbow", "right shoulder", "left shoulder", "left elbow",
    "left wrist", "neck", "head top",
)
SHORT = ("r_ank", "r_kne", "r_hip", "l_hip", "l_kne", "l_ank", "r_wri", "r_elb",
         "r_sho", "l_sho", "l_elb", "l_wri", "neck", "head")
K = len(NAMES)  # 14

R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE = 0, 1, 2, 3, 4, 5
R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST = 6, 7, 8, 9, 10, 11
NECK, HEAD = 12, 13

# The 12 limb joints (all but neck and head top): the ones MediaPipe BlazePose also predicts,
# so the lab and BlazePose can be compared joint for joint.
LIMB_JOINTS = tuple(range(12))

# Torso diameter for PCK: left shoulder to right hip of the ground truth.
TORSO = (L_SHOULDER, R_HIP)

# Horizontal flip swaps these (the image's left becomes the person's right).
FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9))
FLIP_PERM = list(range(K))
for _a, _b in FLIP_PAIRS:
    FLIP_PERM[_a], FLIP_PERM[_b] = _b, _a
FLIP_PERM = tuple(FLIP_PERM)

# The seven reported groups: left and right averaged.
GROUPS = {
    "head": (NECK, HEAD),
    "shoulder": (R_SHOULDER, L_SHOULDER),
    "elbow": (R_ELBOW, L_ELBOW),
    "wrist": (R_WRIST, L_WRIST),
    "hip": (R_HIP, L_HIP),
    "knee": (R_KNEE, L_KNEE),
    "ankle": (R_ANKLE, L_ANKLE),
}

# Kinematic tree (undirected limbs), used for drawing and the tree graph.
LIMBS = (
    (R_ANKLE, R_KNEE), (R_KNEE, R_HIP), (L_ANKLE, L_KNEE), (L_KNEE, L_HIP),
    (R_HIP, NECK), (L_HIP, NECK),
    (R_WRIST, R_ELBOW), (R_ELBOW, R_SHOULDER), (L_WRIST, L_ELBOW), (L_ELBOW, L_SHOULDER),
    (R_SHOULDER, NECK), (L_SHOULDER, NECK), (NECK, HEAD),
)
# For drawing only: torso outline.
DRAW_EXTRA = ((R_HIP, L_HIP), (R_SHOULDER, R_HIP), (L_SHOULDER, L_HIP))


def side(k: int) -> str:
    """'right', 'left' or 'centre' (for colouring skeletons)."""
    return NAMES[k].split()[0] if NAMES[k].startswith(("right", "left")) else "centre"
