"""Probe the software and hardware a recording runs on.

The result is the trace model's `EnvironmentInfo` (a pydantic record in
`llenergymeasure.traces.model`); the probing itself — package versions, the
CPU model, torch's CUDA build, the NVIDIA driver and GPU name through NVML —
lives here, in core, next to the other hardware code (`core.timing`).
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import socket
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from llenergymeasure.traces.model import EnvironmentInfo

__all__ = ["capture_environment"]

logger = logging.getLogger(__name__)


@functools.cache
def _version_of(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _static() -> tuple[str, str, str | None]:
    """Platform, host name and CPU model: fixed for the life of the process, read once."""
    return platform.platform(), socket.gethostname(), _cpu_name()


def _cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _cuda_and_gpu() -> tuple[str | None, str | None]:
    """torch's CUDA build and the first GPU's name, when torch is already imported."""
    torch_mod = sys.modules.get("torch")
    if torch_mod is None:
        return None, None
    cuda = gpu = None
    try:
        cuda = torch_mod.version.cuda
        if torch_mod.cuda.is_available():
            gpu = torch_mod.cuda.get_device_name(0)
    except Exception as exc:  # a broken CUDA setup must not stop a recording
        logger.debug("could not query torch.cuda: %s", exc)
    return cuda, gpu


def _nvml_driver_and_gpu() -> tuple[str | None, str | None]:
    """The NVIDIA driver version and the first GPU's name through NVML, when available."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None, None
    driver = gpu = None
    try:
        pynvml.nvmlInit()
        try:
            raw = pynvml.nvmlSystemGetDriverVersion()
            driver = raw.decode() if isinstance(raw, bytes) else str(raw)
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
            gpu = name.decode() if isinstance(name, bytes) else str(name)
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # no NVML library, no GPU, no driver
        logger.debug("NVML unavailable: %s", exc)
    return driver, gpu


def capture_environment() -> EnvironmentInfo:
    """Describe the running environment.

    Cheap and side-effect free: torch is queried for CUDA details only when it
    is already imported (this function never imports it), and NVML only when
    `pynvml` is installed; whatever cannot be found is None. Package versions,
    the platform, the host name and the CPU model are read once per process
    and cached; the CUDA and GPU fields are queried on every call.

    Returns
    -------
    EnvironmentInfo
        Python, platform, numpy, torch and transformers versions, CUDA build,
        NVIDIA driver, GPU name (torch's name first, else NVML's), host name,
        CPU model and logical CPU count.
    """
    cuda, gpu = _cuda_and_gpu()
    driver, nvml_gpu = _nvml_driver_and_gpu()
    platform_name, hostname, cpu = _static()
    return EnvironmentInfo(
        python=platform.python_version(),
        platform=platform_name,
        numpy=np.__version__,
        torch=_version_of("torch"),
        transformers=_version_of("transformers"),
        cuda=cuda,
        driver=driver,
        gpu_name=gpu if gpu is not None else nvml_gpu,
        hostname=hostname,
        cpu=cpu,
        cpu_count=os.cpu_count(),
    )
