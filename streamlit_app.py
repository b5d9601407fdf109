"""Entry point: page config, the shared sidebar, and navigation over the pages in pages/."""

import streamlit as st

from pages.common import framed, load_query_params, sidebar

st.set_page_config(page_title="Neural style transfer lab", page_icon="🎨", layout="wide")

PAGES = [
    st.Page("pages/stylize.py", title="Stylize", icon="🎨", default=True),
    st.Page("pages/activations.py", title="What layers see", icon="🔬"),
    st.Page("pages/gram.py", title="Gram matrices", icon="🧮"),
    st.Page("pages/cost_curves.py", title="Cost curves", icon="📉"),
    st.Page("pages/experiments.py", title="Layer experiments", icon="🧪"),
    st.Page("pages/how_it_works.py", title="How it works", icon="📐"),
]

page = st.navigation(PAGES, position="top")
load_query_params()
sidebar()
with framed():
    page.run()
