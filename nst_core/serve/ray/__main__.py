"""``python -m nst_core.serve.ray status|restart``: see :mod:`nst_core.serve.ray.admin`."""

from nst_core.serve.ray.admin import main

main()
