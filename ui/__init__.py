"""The app's UI layer, between the engine (``nst_core``), the run service (``nst_core.serve``) and
the thin pages (``pages/``). Its modules import one another at the top and in one direction:
``state`` ← ``network`` ← ``runs`` ← ``frame``, ``state`` ← ``pickers``, ``panel`` ← ``runs``.

- ``frame``: navigation, and the frame every page runs inside;
- ``state``: the student's settings in session state of our own, the widgets fed from it, the URL;
- ``network``: weight sources, the cached models, the server's run backend, the sidebar;
- ``pickers``: the catalogue of bundled images and the image pickers;
- ``cache``: the explainer pages' computations, shared and bounded in bytes;
- ``runs``: the typed run record, the session's gallery, estimates and the one run panel;
- ``panel``: drawing a live run from its view.
"""
