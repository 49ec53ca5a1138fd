"""Experiment trackers through Lightning's loggers: each validation row that ``history.csv`` gets (the CSV log, always
written) also goes to TensorBoard, MLflow or Weights & Biases when asked (``train.logger``, e.g. "csv,tensorboard").

Safe across ``--resume``: the run keeps one tracker run (TensorBoard's version 0, the MLflow run id and the W&B id are
kept in ``trackers.json``), and a step already sent is never sent again, so a run killed after a validation and
resumed from an earlier checkpoint logs each step once."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from omniseg.core.atomic import write_text
from omniseg.errors import ConfigError

TRACKERS = ("csv", "tensorboard", "mlflow", "wandb")
STATE_FILE = "trackers.json"
EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def tracker_names(value: str | list[str] | None) -> list[str]:
    """The trackers of a ``train.logger`` value ("csv", "csv,tensorboard", a list), checked."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value or []) if n.strip()]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ConfigError(f"--logger {', '.join(unknown)}: unknown; choose from {', '.join(TRACKERS)} (comma-separated)")
    return names or ["csv"]


class ExperimentTrackers:
    """The trackers of one run directory; :meth:`log` takes history rows, :meth:`finish` closes them."""

    def __init__(self, names: list[str], run_dir: Path, *, hyperparameters: dict, resume: bool) -> None:
        self.run_dir = Path(run_dir)
        path = self.run_dir / STATE_FILE
        self.state = json.loads(path.read_text()) if resume and path.is_file() else {}
        self.state.setdefault("logged_step", -1)
        self.loggers = [self._build(name) for name in names if name != "csv"]
        if self.loggers and not resume:
            for logger in self.loggers:
                logger.log_hyperparams(hyperparameters)
        self._save()

    def _build(self, name: str):
        try:
            if name == "tensorboard":
                from lightning.pytorch.loggers import TensorBoardLogger

                return TensorBoardLogger(self.run_dir, name="tensorboard", version=0, default_hp_metric=False)
            if name == "mlflow":
                from lightning.pytorch.loggers import MLFlowLogger

                # MLflow 3 keeps its filesystem store in maintenance mode: a SQLite file in the run directory instead
                uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(self.run_dir / 'mlflow.db').resolve()}"
                logger = MLFlowLogger(experiment_name="omniseg", run_name=self.run_dir.name, tracking_uri=uri,
                                      run_id=self.state.get("mlflow_run_id"))
                self.state["mlflow_run_id"], self.state["mlflow_uri"] = logger.run_id, uri
                return logger
            from lightning.pytorch.loggers import WandbLogger

            self.state.setdefault("wandb_id", uuid.uuid4().hex[:12])
            offline = os.environ.get("WANDB_MODE", "offline") == "offline"  # online only when the user says so
            return WandbLogger(project="omniseg", name=self.run_dir.name, save_dir=str(self.run_dir), id=self.state["wandb_id"],
                               resume="allow", offline=offline)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"--logger {name} needs {exc.name}: pip install 'omniseg[{EXTRAS[name]}]'") from None

    def log(self, row: dict) -> None:
        """Send one history row (numbers only) at its step, unless that step was sent before."""
        step = int(row["step"])
        if not self.loggers or step <= self.state["logged_step"]:
            return
        metrics = {k: float(v) for k, v in row.items() if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        for logger in self.loggers:
            logger.log_metrics(metrics, step=step)
            logger.save()
        self.state["logged_step"] = step
        self._save()

    def finish(self, status: str = "success") -> None:
        for logger in self.loggers:
            logger.finalize(status)

    def _save(self) -> None:
        if self.loggers:
            write_text(self.run_dir / STATE_FILE, json.dumps(self.state, indent=1))
