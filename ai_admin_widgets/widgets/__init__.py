"""The AI Settings page as ipywidgets."""

from .panel import AISettingsPanel

__all__ = ["AISettingsPanel"]
