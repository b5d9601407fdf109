"""Helpers for the AppTest tests: the app on a small random network, and the check every test makes."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.support import ROOT

PAGES = ["pages/stylize.py", "pages/activations.py", "pages/gram.py", "pages/cost_curves.py",
         "pages/experiments.py", "pages/how_it_works.py"]
TIMEOUT = 180


def app(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    # A small untrained network and a small image keep every test to seconds.
    for key, value in {"weights_source": "random", "arch": "vgg16", "size": 128, **state}.items():
        at.session_state[key] = value
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
