"""Entry point: `streamlit run lab/app/main.py` (or `pose-lab app`)."""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without install

from lab.app import common  # noqa: E402

st.set_page_config(page_title="pose-lab", page_icon="🧍", layout="wide")
VIEWS = Path(__file__).resolve().parent / "views"
pages = [st.Page(str(VIEWS / f"{name}.py"), title=title, url_path=path, default=(path == "try-it"))
         for name, title, path in common.PAGES]
nav = st.navigation(pages)
common.sidebar()
nav.run()
