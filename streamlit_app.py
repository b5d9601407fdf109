"""Entry point: page config, the shared sidebar, and navigation over the pages in pages/."""

import streamlit as st

from pages.common import framed, load_query_params, sidebar

st.set_page_config(page_title="Neural style transfer lab", page_icon="🎨", layout="wide")

PAGES = [
    st.Page("pages/stylize.py", title="Stylize", icon="🎨", default=True),
    st.Page("pages/activations.py", title="What layers see", icon="🔬"),
    st.Page("pages/gram.py", title="Gram matrices", icon="🧮"),
]

page = st.navigation(PAGES)
load_query_params()
sidebar()
with framed():
    page.run()
