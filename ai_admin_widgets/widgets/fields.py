"""A labelled, keyboard-friendly text input for the regions still drawn with ipywidgets (until they are nodes of the panel).

The field renders one ``<label for>`` tied to one ``<input>``; Enter in the input calls
the field's :meth:`~_InputField.on_submit` callbacks (the form saves) and Escape its
:meth:`~_InputField.on_cancel` callbacks (the form closes). ``described_by`` names the
DOM ids of the field's help text and error, so screen readers read them with the input.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

__all__ = ["TextField"]

_CSS = """
.aiw-input-row { display: flex; align-items: center; gap: 6px; }
.aiw-input-label {
  width: 130px; text-align: right; flex: none;
  color: var(--jp-widgets-label-color, var(--jp-ui-font-color1));
  font-size: var(--jp-widgets-font-size, var(--jp-ui-font-size1));
}
.aiw-input {
  flex: 1; min-width: 0; height: var(--jp-widgets-inline-height, 28px);
  padding: 0 6px; box-sizing: border-box;
  color: var(--jp-widgets-input-color, var(--jp-ui-font-color1));
  background: var(--jp-widgets-input-background-color, var(--jp-layout-color1));
  border: var(--jp-widgets-input-border-width, 1px) solid var(--jp-widgets-input-border-color, var(--jp-border-color1));
  font-size: var(--jp-widgets-font-size, var(--jp-ui-font-size1));
}
.aiw-input::placeholder { color: var(--jp-ui-font-color3, #757575); }
.aiw-input:focus { border-color: var(--jp-widgets-input-focus-border-color, var(--jp-brand-color1)); outline: none; }
.aiw-input[aria-invalid="true"] { border-color: var(--jp-error-color1, #d32f2f); }
.aiw-input:disabled { opacity: var(--jp-widgets-disabled-opacity, 0.6); }
"""


class _InputField(anywidget.AnyWidget):
    """What both fields share: label, placeholder, help and error ids, Enter and Escape."""

    _esm = Path(__file__).with_name("fields.js")
    _css = _CSS

    kind = traitlets.Unicode("text").tag(sync=True)
    description = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    described_by = traitlets.Unicode("").tag(sync=True)
    invalid = traitlets.Bool(False).tag(sync=True)
    context = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit: list[Callable[[], None]] = []
        self._cancel: list[Callable[[], None]] = []
        self.on_msg(self._receive)

    def on_submit(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when Enter is pressed in the field (after its text has reached the kernel)."""
        self._submit.append(callback)

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when Escape is pressed in the field."""
        self._cancel.append(callback)

    def focus(self) -> None:
        """Move the keyboard focus to the field's input in every view of it."""
        self.send({"type": "focus"})

    def _receive(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "submit":
            for callback in list(self._submit):
                callback()
        elif kind == "cancel":
            for callback in list(self._cancel):
                callback()


class TextField(_InputField):
    """A labelled text input whose value is ordinary synchronized widget state.

    Args:
        description: the visible label, tied to the input (``<label for>``).
        placeholder: the grey text shown while the field is empty.
        value: the initial text.

    Attributes:
        value: the text (synchronized both ways).
        disabled, described_by, invalid: synchronized traits; ``described_by`` is a
            space-separated list of DOM ids (``aria-describedby``), ``invalid`` sets
            ``aria-invalid`` and the error border; ``context`` (e.g. ``"Language model"``) is
            added to what screen readers announce, where two fields share a label.
    """

    value = traitlets.Unicode("").tag(sync=True)

    def __init__(self, *, description: str = "", placeholder: str = "", value: str = "", **kwargs: Any) -> None:
        super().__init__(kind="text", description=description, placeholder=placeholder, value=value, **kwargs)

    def __repr__(self) -> str:
        return f"TextField(description={self.description!r}, value={self.value!r})"
