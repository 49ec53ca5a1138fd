"""``omniseg serve``: a REST API (FastAPI) over the inference room: semantic, instance, panoptic and
promptable models, and the classical methods. Imports ``inference``, never ``engine``."""

from omniseg.server.app import create_app
from omniseg.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
