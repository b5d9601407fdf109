"""Entry point: page config, the shared sidebar, and navigation over the pages in pages/."""

import streamlit as st

from pages.common import load_query_params, sidebar

st.set_page_config(page_title="Neural style transfer lab", page_icon="🎨", layout="wide")

PAGES = [
    st.Page("pages/stylize.py", title="Stylize", icon="🎨", default=True),
]

page = st.navigation(PAGES)
load_query_params()
sidebar()
page.run()
