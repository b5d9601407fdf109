"""The Ray backend's public names, where :func:`nst_core.serve.backend.backend_from_env` and the
operator's command look for them; the code lives in the package :mod:`nst_core.serve.ray`, one
module per role. Importing this imports Ray: only ``backend_from_env`` does, and only when
``NST_RAY_ADDRESS`` is set.

    python -m nst_core.serve.ray_backend status|restart   (the same as python -m nst_core.serve.ray)
"""

from nst_core.serve.ray import (REGISTRY_NAME, WORKER_PREFIX, RayBackend, RayHandle, check_address, check_image,
                                ray_settings, shutdown_service)
from nst_core.serve.ray.admin import main

__all__ = ["REGISTRY_NAME", "WORKER_PREFIX", "RayBackend", "RayHandle", "check_address", "check_image", "main",
           "ray_settings", "shutdown_service"]

if __name__ == "__main__":
    main()
