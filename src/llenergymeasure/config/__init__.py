"""Configuration models."""

from llenergymeasure.config.files import ConfigFileError
from llenergymeasure.config.models import WarmupConfig

__all__ = ["ConfigFileError", "WarmupConfig"]
