"""Which priors the spatial model uses: a list of directed edges (A, v) meaning
"v sends a message to A", always including the self edge (A, A)."""
from __future__ import annotations

from lab.joints import LIMBS, K


def edges(graph: str, k: int = K) -> list[tuple[int, int]]:
    """Directed edges (A, v), sorted by target A then neighbour v.

    "tree": the kinematic tree (both directions of each limb) plus self edges.
    "full": every ordered pair, the self edges included (K * K edges).
    """
    if graph == "full":
        pairs = {(a, v) for a in range(k) for v in range(k)}
    elif graph == "tree":
        pairs = {(a, a) for a in range(k)}
        pairs |= {(a, v) for a, v in LIMBS} | {(v, a) for a, v in LIMBS}
    else:
        raise ValueError(f"unknown graph {graph!r}: use 'tree' or 'full'")
    return sorted(pairs)


def neighbours(edge_list: list[tuple[int, int]], a: int) -> list[int]:
    """The v with an edge v -> a, in message order (self edge first)."""
    vs = [v for (t, v) in edge_list if t == a]
    return sorted(vs, key=lambda v: (v != a, v))
