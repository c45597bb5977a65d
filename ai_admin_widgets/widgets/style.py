"""What the panel's regions share: JupyterLab theme colours (``--jp-*``) and small helpers."""

from __future__ import annotations

import html

import ipywidgets as widgets

__all__ = ["ERROR", "HELP", "SUCCESS", "WARNING", "classes", "show", "span", "text"]

ERROR = "color: var(--jp-error-color1, #d32f2f)"
WARNING = "color: var(--jp-warn-color1, #f57c00)"
SUCCESS = "color: var(--jp-success-color1, #388e3c)"
HELP = "color: var(--jp-ui-font-color2, #616161); font-size: var(--jp-ui-font-size0, 11px)"


def text(value: str) -> str:
    """``value`` escaped for HTML text (quotes kept as they are)."""
    return html.escape(value, quote=False)


def span(value: str, style: str, *, alert: bool = False) -> str:
    """``value`` in a ``<span>`` with ``style``; ``alert=True`` makes screen readers announce it."""
    role = ' role="alert"' if alert else ""
    return f'<span{role} style="{style}">{text(value)}</span>'


def classes(widget: widgets.DOMWidget, *names: str) -> widgets.DOMWidget:
    """Add the CSS classes ``names`` to ``widget`` and return it."""
    for name in names:
        widget.add_class(name)
    return widget


def show(widget: widgets.Widget, visible: bool) -> None:
    """Show or hide ``widget`` (its layout's ``display``)."""
    widget.layout.display = None if visible else "none"
