"""The Hydra callback that keeps passwords out of the files Hydra writes itself (``hydra.callbacks``).

Hydra saves ``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml`` (each job) and ``multirun.yaml``
(each sweep) with the overrides as typed, so ``tracking.uri=http://user:PW@host`` would stay there in
plain text. This callback rewrites them masked as soon as a job starts (the files exist by then) and again
when it ends, together with the job's log file; it also installs imblab's process-wide masking of logs
and the standard streams in every job process (a joblib worker is a process of its own). Registered
first in ``conf/train.yaml`` and ``conf/panel/panel.yaml`` so it runs before the sweep callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from imblab.secrets import install, mask_files

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
MULTIRUN_YAML = "multirun.yaml"


def sweep_file(config: DictConfig) -> list[Path]:
    """The sweep's ``multirun.yaml`` (none outside a multirun)."""
    if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
        return []
    return [Path(str(config.hydra.sweep.dir)) / MULTIRUN_YAML]


def job_files(config: DictConfig) -> list[Path]:
    """The files Hydra wrote for this job: ``.hydra/*.yaml``, the job's log file, the sweep's file."""
    out = Path(str(config.hydra.runtime.output_dir))
    files: list[Path] = []
    subdir = OmegaConf.select(config, "hydra.output_subdir")
    if subdir is not None:
        files += [out / str(subdir) / name for name in HYDRA_FILES]
    log_file = OmegaConf.select(config, "hydra.job_logging.handlers.file.filename", default=None)
    if log_file:
        files.append(Path(str(log_file)))
    return files + sweep_file(config)


class MaskingCallback(Callback):
    """Masks passwords in Hydra's output files and in this process's logs and standard streams."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        install()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        install()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        install()
        mask_files(job_files(config))

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        mask_files(job_files(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        mask_files(sweep_file(config))
