"""The API Key field: what is typed reaches the kernel by message and never becomes widget state."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import anywidget
import traitlets

__all__ = ["KeyField"]

_CSS = """
.aiw-key-row { display: flex; align-items: center; gap: 6px; }
.aiw-key-label {
  width: 130px; text-align: right; flex: none;
  color: var(--jp-widgets-label-color, var(--jp-ui-font-color1));
  font-size: var(--jp-widgets-font-size, var(--jp-ui-font-size1));
}
.aiw-key-input {
  flex: 1; min-width: 0; height: var(--jp-widgets-inline-height, 28px);
  padding: 0 6px; box-sizing: border-box;
  color: var(--jp-widgets-input-color, var(--jp-ui-font-color1));
  background: var(--jp-widgets-input-background-color, var(--jp-layout-color1));
  border: var(--jp-widgets-input-border-width, 1px) solid var(--jp-widgets-input-border-color, var(--jp-border-color1));
  font-size: var(--jp-widgets-font-size, var(--jp-ui-font-size1));
}
.aiw-key-input:focus { border-color: var(--jp-widgets-input-focus-border-color, var(--jp-brand-color1)); outline: none; }
"""


class KeyField(anywidget.AnyWidget):
    """A password input for an API key, whose text is never synchronized widget state.

    The browser hands each change to the kernel as a custom message; the kernel keeps
    the text in :attr:`value` (a plain Python attribute, not a trait), so saving the
    notebook with its widget state never writes the key. Enter and Escape in the field
    call the :meth:`on_submit` and :meth:`on_cancel` callbacks.

    Args:
        description: the visible label, tied to the input (``<label for>``).
        placeholder: the grey text shown while the field is empty.

    Attributes:
        description, placeholder, disabled: synchronized traits (no secret).
        error_id: the DOM id of the element that describes this field's error, for
            screen readers (``aria-describedby``); empty when there is none.
    """

    _esm = Path(__file__).with_name("key_field.js")
    _css = _CSS

    description = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)
    error_id = traitlets.Unicode("").tag(sync=True)

    def __init__(self, *, description: str = "", placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(description=description, placeholder=placeholder, **kwargs)
        self._value = ""
        self._submit: list[Callable[[], None]] = []
        self._cancel: list[Callable[[], None]] = []
        self.on_msg(self._receive)

    def __repr__(self) -> str:
        return f"KeyField(description={self.description!r}, filled={bool(self._value)})"

    @property
    def value(self) -> str:
        """The typed key (kept in the kernel only); ``""`` when empty."""
        return self._value

    @value.setter
    def value(self, text: str) -> None:
        self._value = text
        if not text:
            self.send({"type": "clear"})

    def on_submit(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when Enter is pressed in the field."""
        self._submit.append(callback)

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when Escape is pressed in the field."""
        self._cancel.append(callback)

    def _receive(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "key" and isinstance(content.get("value"), str):
            self._value = content["value"]
        elif kind == "submit":
            for callback in list(self._submit):
                callback()
        elif kind == "cancel":
            for callback in list(self._cancel):
                callback()
