"""Navigation and the frame every page runs inside: settings from the link, the sidebar, the URL.

A folder named ``pages/`` beside the entrypoint makes Streamlit run a requested page file directly
until the entrypoint has called ``st.navigation`` once in the process: a deep link that is a fresh
server's first request lands in the page without the frame. Each page therefore starts with
:func:`enter`, which then runs the whole app through ``st.navigation`` itself: public API only.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from ui import network, pickers, state
from ui.runs import recover_interrupted, settle_interrupted

_frame = threading.local()  # a session's script runs in a thread of its own, one run at a time

PAGES = (
    ("pages/stylize.py", "Stylize", "🎨"),
    ("pages/activations.py", "What layers see", "🔬"),
    ("pages/gram.py", "Gram matrices", "🧮"),
    ("pages/cost_curves.py", "Cost curves", "📉"),
    ("pages/experiments.py", "Layer experiments", "🧪"),
    ("pages/how_it_works.py", "How it works", "📐"),
)


@contextmanager
def _inside():
    _frame.active = True
    try:
        yield
    finally:
        _frame.active = False


def app() -> None:
    """The whole app: page config, navigation, the student's settings, the sidebar, then the page."""
    st.set_page_config(page_title="Neural style transfer lab", page_icon="🎨", layout="wide")
    st.html(_COMPACT)
    page = st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                          for i, (path, title, icon) in enumerate(PAGES)], position="top")
    state.start(network.sources(), list(pickers.catalogue("content")), list(pickers.catalogue("style")))
    recover_interrupted(page.url_path)
    model = network.sidebar()
    state.write_url(model.arch, network.loaded_source())
    with _inside():
        page.run()
    settle_interrupted()  # the page did not go on with an interrupted run


# Streamlit greys captions to 60% of the text colour at 14 px: on a projector the explanations
# under every picture washed out. Nearly the body's colour (about 10:1 on the light theme the app
# sets) and a little larger keep them apart from body text by size only.
_READABLE = ("[data-testid='stCaptionContainer'],[data-testid='stImageCaption']"
             "{color:#3a3b45 !important;font-size:0.95rem !important;opacity:1 !important}")

# Streamlit leaves a tall empty band above the first element; on a projector that band pushes the
# Run button and the pictures below the fold, so the frame trims it on every page.
# A long formula scrolls inside its own box on a phone instead of being cut off at the screen's edge.
_COMPACT = ("<style>[data-testid='stMainBlockContainer'] {padding-top: 3.5rem; padding-bottom: 3rem;}"
            ".katex-display{overflow-x:auto;overflow-y:hidden;max-width:100%}"
            ".katex-display::-webkit-scrollbar{height:6px}.katex-display::-webkit-scrollbar-thumb{background:#bbb}"
            "@media (max-width:640px){.katex-display>.katex{font-size:0.88em}}"
            # Stylize's two pictures never push Run out of view: a portrait photo on a 720 px
            # projector, or two pictures stacked on a phone.
            ".st-key-inputs [data-testid='stImage'] img{max-height:24vh;width:auto !important;max-width:100%;"
            "object-fit:contain}"
            "@media (max-width:640px), (max-height:800px){.st-key-inputs [data-testid='stImage'] img{max-height:13vh}}"
            + _READABLE + "</style>")
# Presentation mode gives the sidebar's width to the pictures.
_NO_SIDEBAR = "<style>[data-testid='stSidebar'], [data-testid='stSidebarCollapsedControl'] {display: none;}</style>"


def presentation_toggle(where=st) -> bool:
    """The presentation switch (the ``present`` setting, so it survives page switches and links);
    while it is on, the sidebar is hidden. Returns whether it is on."""
    on = state.widget("present", where)
    if on:
        st.html(_NO_SIDEBAR)
    return on


def latex_two_lines(formula: str, before: str) -> None:
    """``formula`` on two lines, aligned at its first "=", broken before ``before``: on one line the
    style cost and the smoothness term are wider than a phone."""
    head, tail = formula.split(before, 1)
    st.latex(r"\begin{aligned}" + head.replace("=", "&=", 1) + r" \\ &" + before + tail + r"\end{aligned}")


HIDDEN_SETTINGS_NOTE = ("Presentation mode is on and hides the settings: switch it off at the top of "
                        "**Stylize** to reach Settings → Advanced.")


def settings_hidden() -> bool:
    """Whether Presentation mode hides Stylize's settings now."""
    return bool(st.session_state.get("present"))


def settings_place(where: str) -> str:
    """Where a setting of Stylize is, in words that still hold while Presentation mode hides it."""
    if settings_hidden():
        return f"Stylize → {where}; switch Presentation mode off there first, it hides the settings"
    return f"change it on Stylize → {where}"


def table_height(rows: int) -> int:
    """Pixels for a ``st.dataframe`` of ``rows`` rows with no scrolling inside it: Streamlit draws
    35 px a row, the header included, and a 1 px border."""
    return 35 * (rows + 1) + 3


def try_this(text: str) -> None:
    """A short prompt that leads a student to the claim the page shows. One that sends the student
    to the settings says how to get there while Presentation mode hides them."""
    if settings_hidden() and ("Advanced" in text or "Settings" in text):
        text += f"\n\n*{HIDDEN_SETTINGS_NOTE}*"
    st.info(f"**Try this:** {text}", icon="💡")


def enter() -> None:
    """First line of every page: outside the frame, run the app (which runs this page in it) instead."""
    if not getattr(_frame, "active", False):
        app()
        st.stop()
