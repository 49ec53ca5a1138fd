"""``omniseg serve``: the REST API over runs, on 127.0.0.1 by default (extra ``serve``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from omniseg.cli.output import add_device_argument, add_precision_argument

from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="serve models over HTTP (REST API; docs at /docs)",
                       description="Serve runs (semantic, instance, panoptic, promptable) and the classical methods over "
                                   "HTTP with FastAPI and uvicorn (extra 'serve'). The OpenAPI documentation is at /docs.")
    p.add_argument("runs", nargs="*", metavar="RUN_OR_CHECKPOINT",
                   help="run directories (named by their folder) or promptable checkpoint files (named by their stem)")
    p.add_argument("--arch", help="architecture of the checkpoint files (sam_vit_b, sam_vit_l, sam_vit_h, mobile_sam); "
                                  "not needed for the official file names")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload (413 above it)")
    p.add_argument("--max-megapixels", type=float, default=40.0, help="largest image (413 above it)")
    p.add_argument("--cache-mb", type=float, default=512.0, help="memory for cached image embeddings")
    p.add_argument("--workers", type=int, default=2, help="inference calls at once; more requests queue")
    p.add_argument("--label-dir", help="folder where labelled objects are saved (COCO)")
    p.add_argument("--backend", choices=["torch", "onnxruntime", "openvino"], default="torch",
                   help="run the one semantic run served through ONNX Runtime or OpenVINO (its --exported file)")
    p.add_argument("--exported", metavar="FILE", help="with --backend: the exported model (.onnx or .xml, float32 or INT8)")
    add_precision_argument(p)
    add_device_argument(p)


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        import uvicorn

        from omniseg.server import ServerSettings, create_app
    except ImportError:
        raise ConfigError("omniseg serve needs the serve extra: pip install 'omniseg[serve]'") from None
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: at least 1")
    settings = ServerSettings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=int(args.max_megapixels * 1e6),
                              cache_bytes=int(args.cache_mb * 1024 * 1024), workers=args.workers,
                              label_dir=Path(args.label_dir) if args.label_dir else None)
    app = create_app(args.runs, settings, device=args.device, arch=args.arch, precision=args.precision, backend=args.backend,
                     exported=args.exported)
    console.print(f"serving {len(args.runs)} model(s) on http://{args.host}:{args.port} (API docs at /docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
