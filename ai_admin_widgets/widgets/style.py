"""What the regions still drawn with ipywidgets share: JupyterLab theme colours (``--jp-*``) and small helpers."""

from __future__ import annotations

import html
import itertools

import ipywidgets as widgets

__all__ = ["ERROR", "HELP", "SUCCESS", "WARNING", "classes", "element_id", "show", "span", "text"]

_ids = itertools.count(1)

ERROR = "color: var(--jp-error-color1, #d32f2f)"
# Orange text is hard to read on white (under 4:1), so a warning is ordinary text marked by an orange bar.
WARNING = (
    "color: var(--jp-ui-font-color1, #212121); border-left: 3px solid var(--jp-warn-color1, #f57c00); padding-left: 6px"
)
SUCCESS = "color: var(--jp-success-color1, #388e3c)"
HELP = "color: var(--jp-ui-font-color2, #616161); font-size: var(--jp-ui-font-size0, 11px)"


def text(value: str) -> str:
    """``value`` escaped for HTML text (quotes kept as they are)."""
    return html.escape(value, quote=False)


def span(value: str, style: str, *, alert: bool = False, element_id: str | None = None) -> str:
    """``value`` in a ``<span>`` with ``style``.

    Args:
        value: plain text (escaped here).
        style: inline CSS, e.g. :data:`ERROR`.
        alert: make screen readers announce it as soon as it appears (``role="alert"``,
            an assertive ``aria-live`` region).
        element_id: the span's DOM id, for an input's ``aria-describedby``.
    Returns:
        The HTML text.
    """
    attributes = f' id="{html.escape(element_id)}"' if element_id else ""
    if alert:
        attributes += ' role="alert" aria-live="assertive"'
    return f'<span{attributes} style="{style}">{text(value)}</span>'


def classes(widget: widgets.DOMWidget, *names: str) -> widgets.DOMWidget:
    """Add the CSS classes ``names`` to ``widget`` and return it."""
    for name in names:
        widget.add_class(name)
    return widget


def show(widget: widgets.Widget, visible: bool) -> None:
    """Show or hide ``widget`` (its layout's ``display``)."""
    widget.layout.display = None if visible else "none"


def element_id(prefix: str) -> str:
    """A DOM id not handed out before in this kernel, e.g. ``"aiw-help-7"`` for ``prefix="aiw-help"``."""
    return f"{prefix}-{next(_ids)}"
