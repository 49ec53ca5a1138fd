"""The FastAPI application: the served models in one :class:`~omniseg.server.state.ServerState`, the routers
(``routes/``: models, dense prediction, prompting, classical methods, labelling, videos), error handlers and the pages
(``/``: images, ``/video``: videos)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from omniseg.errors import ConfigError, OmnisegError
from omniseg.server.routes import classical, dense, info, labelling, promptable, video
from omniseg.server.settings import ServerSettings
from omniseg.server.state import LoadedModel, ServerState
from omniseg.server.uploads import UploadError

STATIC = Path(__file__).parent / "static"
ENGINES = ("grabcut", "random-walker")


def create_app(models: Sequence[str | Path] | dict[str, str | Path] = (), settings: ServerSettings | None = None, *,
               device: str | None = None, arch: str | None = None, precision: str = "32", backend: str = "torch",
               exported: str | Path | None = None) -> FastAPI:
    """The application serving ``models``: run directories, or promptable checkpoint files of architecture ``arch``
    (not needed for the official file names). A dict names them, else the folder or file stem does. The weight-free
    prompt engines (GrabCut, the random walker) are served too unless ``settings.prompt_engines`` is off.
    ``precision`` is every model's arithmetic (see :class:`~omniseg.inference.Predictor`; a promptable model's image
    encoder); ``backend`` and ``exported`` run the one semantic run served through ONNX Runtime or OpenVINO."""
    settings = settings or ServerSettings()
    named = dict(models) if isinstance(models, dict) else {Path(m).stem if Path(m).is_file() else Path(m).name: m for m in models}
    if backend != "torch" and len(named) != 1:
        raise ConfigError(f"the {backend} backend serves one semantic run (its exported file); serve the others apart")
    loaded = {name: LoadedModel(name, source, arch=arch if Path(source).is_file() else None, device=device, precision=precision,
                                backend=backend, exported=exported)
              for name, source in named.items()}
    if settings.prompt_engines:
        loaded.update({engine: LoadedModel(engine, None, engine=engine) for engine in ENGINES if engine not in loaded})
    state = ServerState(loaded, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        state.videos.close_all()  # the opened videos' folders go with the server

    app = FastAPI(title="omniseg", summary="Segmentation models and classical methods over HTTP", version="1", lifespan=lifespan)
    app.state.omniseg = state
    app.add_exception_handler(UploadError, _upload_error)
    app.add_exception_handler(OmnisegError, _omniseg_error)
    for router in (info.router, dense.router, promptable.router, classical.router, labelling.router, video.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/", lambda: FileResponse(STATIC / "index.html"), include_in_schema=False)
    app.add_api_route("/video", lambda: FileResponse(STATIC / "video.html"), include_in_schema=False)
    app.add_api_route("/favicon.ico", lambda: Response(status_code=204), include_in_schema=False)
    return app


async def _upload_error(request, exc: UploadError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"detail": exc.message})


async def _omniseg_error(request, exc: OmnisegError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc)})
