"""The app's UI layer, between the engine (``nst_core``) and the thin pages (``pages/``).

- ``frame``: navigation, and the frame every page runs inside;
- ``state``: the student's settings in session state of our own, the widgets fed from it, the URL;
- ``network``: weight sources, the one cached model, the sidebar;
- ``pickers``: the catalogue of bundled images and the image pickers;
- ``runs``: the typed run record, the session's gallery and the one run panel.
"""
