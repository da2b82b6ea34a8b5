"""Entry point: `pose-lab app` (or `streamlit run lab/app/main.py` from a checkout).

Streamlit runs this script once per page view of every session; what must happen once per
server process (torch threads, the model worker pool) happens when `lab.app.workers` is
first imported."""
import sys
import time
from pathlib import Path

import streamlit as st

_REPO = Path(__file__).resolve().parents[2]
if (_REPO / "pyproject.toml").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))              # a checkout run without installing

from lab.app import common, links, workers  # noqa: E402

_T0 = time.perf_counter()
workers.install()                               # once per process: torch threads, model pool
st.set_page_config(page_title="pose-lab", page_icon="🧍", layout="wide")
VIEWS = Path(__file__).resolve().parent / "views"
pages = [st.Page(str(VIEWS / f"{name}.py"), title=title, url_path=path, default=(path == "try-it"))
         for name, title, path in common.PAGES]
nav = st.navigation(pages)
links.arrive(nav.url_path)                      # a link opened: its model and photo first
common.sidebar()
try:
    nav.run()
finally:
    workers.record_run(nav.url_path, _T0)
