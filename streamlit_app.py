"""Entry point: page config, st.navigation over pages/, the student's settings and the shared sidebar
(all in ``ui.frame``)."""

from ui.frame import app

app()
