"""Start here: what the lab is, the order to go through it, and what each page shows."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from lab.app import common

VIEWS = Path(common.__file__).resolve().parent / "views"

WHAT = (
    "**pose-lab** rebuilds, piece by piece, Tompson, Jain, LeCun & Bregler, *Joint Training of a "
    "Convolutional Network and a Graphical Model for Human Pose Estimation* (NIPS 2014), and lets you look "
    "inside every stage on real photos: the part detector's **unary** heatmaps from its resolution "
    "**banks**, the spatial model's **priors**, the **messages** and their product, the **marginal**, and a "
    "DeepPose-style regressor for comparison. Every figure on the pages comes from the shipped models and "
    "their evaluation on the LSP test set.")

# page url path -> what a learner sees there, in the order to go through the lab
TOUR = (
    ("try-it", "Give the model a photo (a sample, or your own): the person is found and framed, and three "
               "predictors draw their skeletons. Start here."),
    ("detector", "The 14 unary heatmaps of the part detector, its resolution banks (switch one off) and what "
                 "happens when you hide part of the crop."),
    ("priors", "The prior between two joints, a kernel over every displacement between two heatmap "
               "pixels, next to the displacement histogram it started from."),
    ("messages", "One joint's marginal built one message at a time: plant a neighbour, switch a message off, "
                 "compare the tree with the fully connected graph."),
    ("compare", "Heatmaps against direct regression on the whole LSP test set: PCK curves, a table by body "
                "part, and the regressor's pull towards the average pose."),
    ("retrain", "Train the small configuration yourself in a minute or two and watch the training and "
                "validation curves."),
)


def main() -> None:
    st.title("Start here")
    st.markdown(WHAT)
    st.subheader("The order to go through it")
    st.markdown("Each step is one page and one short lesson. Read the lesson (the 📖 link at the top of each "
                "page), try the page, then answer the lesson's *Check yourself* questions at its end.")
    titles = {path: (name, title) for name, title, path in common.PAGES}
    for n, (path, what) in enumerate(TOUR, 1):
        name, title = titles[path]
        c1, c2 = st.columns([1, 3])
        with c1:
            st.page_link(str(VIEWS / f"{name}.py"), label=f"{n}. {title}", icon=":material/arrow_forward:")
        with c2:
            st.markdown(what)
            common.lesson_link(path)
    st.subheader("Good to know")
    st.markdown(
        "- The sidebar picks the model every page uses: the shipped ImageNet model (the default), the paper's "
        "from-scratch model, the fully connected graph, or a run you trained on the Retrain page.\n"
        "- A page's address holds what you set on it: copy it to share exactly that view.\n"
        "- Photos you upload stay in your session, in memory only; nothing you answer is stored.")


common.friendly(main)
