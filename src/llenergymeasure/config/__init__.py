"""Configuration models."""

from llenergymeasure.config.models import WarmupConfig

__all__ = ["WarmupConfig"]
