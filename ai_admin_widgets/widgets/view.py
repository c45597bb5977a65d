"""The panel's one state: a tree of plain nodes (dicts) that ``panel.js`` renders and tests read.

Every region of the page is described here, in Python, as nodes; the front end draws them with
no wording or decision of its own. A node is a JSON-ready ``dict`` with a ``kind`` and a ``key``
(unique among its siblings, stable between renders, so the front end keeps the same DOM element,
its focus and what is being typed in it). No node ever holds a secret: a key field carries its
label and placeholder only; what is typed in it reaches the kernel as custom messages.

Kinds and their fields (``cls`` is the node's stable CSS classes, space-separated):

- ``box``: ``children``; ``role`` and ``label`` (``aria-label``) when it is a landmark;
  ``submit_event``: Enter in a text field inside it sends that event (with the keys), as a dialog's.
- ``region``: ``title`` (an ``<h4>``), ``children``; a ``<section>`` labelled by its title.
- ``heading``: ``text``, ``level`` (2-5).
- ``text``: ``text`` (newlines are line breaks), ``tone`` (``plain``, ``help``, ``error``,
  ``warning``, ``success``, ``busy``), ``alert`` (announced at once: ``role="alert"``).
- ``ago``: ``iso`` (a UTC time), ``template`` (``"Last authenticated {ago}"``), ``text`` (as
  rendered by Python at the last render); the front end keeps ``{ago}`` current by itself.
- ``button``: ``label``, ``event``, ``tone`` (``""``, ``primary``, ``danger``), ``disabled``,
  ``keys`` (True: the event carries the key fields' text, e.g. Save), ``aria_label``.
- ``field``: ``path`` (the model path, e.g. ``language_model.endpoint_url``), ``input``
  (``text`` or ``key``), ``label``, ``value`` (text only; never for ``key``), ``placeholder``,
  ``help``, ``error``, ``notice``, ``optional``, ``disabled``, ``suggestions`` (values offered
  beside what may be typed: an ``<input list>`` with a ``<datalist>``; empty: none). Losing focus
  sends ``{"event": "field.blur", "path", "value"}``; Enter sends the submit event of the nearest
  enclosing dialog or box that has one.
- ``radio``: ``path``, ``label``, ``options`` (``[{"value", "label"}]``), ``value``, ``event``;
  a radio group with ``aria-checked``, arrow keys move the choice; a change sends
  ``{"event": event, "path", "value"}``.
- ``checkbox``: ``path``, ``label``, ``value``, ``event`` (sent as a radio's).
- ``table``: ``caption``, ``columns`` (header texts), ``rows`` (lists of cell texts).
- ``svg``: ``markup`` (made by Python from numbers and escaped text), ``label`` (its text alternative).
- ``disclosure``: ``label``, ``open``, ``event``, ``children`` (empty while closed: a closed region
  costs nothing); a button with ``aria-expanded``.
- ``dialog``: ``title``, ``children``, ``cancel_event`` (Escape, the close button),
  ``submit_event`` (Enter in a field), ``focus`` (the CSS class that gets the focus when it opens),
  ``busy``; a modal over the page, focus kept inside, focus returned to the row when it closes.

Every event the front end sends is ``{"event": ..., "values": {path: text of every rendered text
field, radio and checkbox}}``, plus ``"keys": {path: text}`` for a button with ``keys`` set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "Node",
    "ago",
    "box",
    "button",
    "checkbox",
    "dialog",
    "disclosure",
    "field",
    "find",
    "heading",
    "radio",
    "region",
    "svg",
    "table",
    "text",
    "text_lines",
    "walk",
]

Node = dict[str, Any]


def _node(kind: str, key: str, cls: str, **fields: Any) -> Node:
    return {"kind": kind, "key": key, "cls": cls, **fields}


def _children(children: Iterable[Node | None]) -> list[Node]:
    return [child for child in children if child is not None]


def box(
    key: str, *children: Node | None, cls: str = "", role: str = "", label: str = "", submit_event: str = ""
) -> Node:
    """A plain container (a ``<div>``); ``None`` children are left out; Enter in its fields sends ``submit_event``."""
    return _node("box", key, cls, children=_children(children), role=role, label=label, submit_event=submit_event)


def region(key: str, title: str, *children: Node | None, cls: str = "") -> Node:
    """A titled part of the page (a ``<section>`` labelled by its ``<h4>`` title)."""
    return _node("region", key, cls, title=title, children=_children(children))


def heading(key: str, value: str, *, level: int = 3, cls: str = "") -> Node:
    return _node("heading", key, cls, text=value, level=level)


def text(key: str, value: str, *, tone: str = "plain", alert: bool = False, cls: str = "") -> Node:
    """Text (newlines are line breaks); ``tone`` one of plain, help, error, warning, success, busy."""
    return _node("text", key, cls, text=value, tone=tone, alert=alert)


def ago(key: str, iso: str, template: str, rendered: str, *, tone: str = "help", cls: str = "") -> Node:
    """A time said as "… ago", kept current by the front end; ``rendered`` is the text as of now."""
    return _node("ago", key, cls, iso=iso, template=template, text=rendered, tone=tone)


def button(
    label: str,
    event: str,
    *,
    cls: str,
    tone: str = "",
    disabled: bool = False,
    keys: bool = False,
    aria_label: str = "",
    key: str = "",
) -> Node:
    """A button that sends ``event``; ``keys`` makes it carry the key fields' text (Save)."""
    return _node(
        "button",
        key or cls.split(maxsplit=1)[0],
        cls,
        label=label,
        event=event,
        tone=tone,
        disabled=disabled,
        keys=keys,
        aria_label=aria_label,
    )


def field(
    path: str,
    label: str,
    *,
    cls: str,
    input: str = "text",
    value: str = "",
    placeholder: str = "",
    help: str = "",
    error: str = "",
    notice: str = "",
    optional: bool = False,
    disabled: bool = False,
    suggestions: Iterable[str] = (),
) -> Node:
    """A labelled input; ``input="key"`` is a password input whose text never enters the state.

    ``suggestions`` are offered in a list under a text input (the admin may still type anything else).
    """
    if input == "key":
        value = ""  # a key never enters the state
    return _node(
        "field",
        path,
        cls,
        path=path,
        input=input,
        label=label,
        value=value,
        placeholder=placeholder,
        help=help,
        error=error,
        notice=notice,
        optional=optional,
        disabled=disabled,
        suggestions=[] if input == "key" else list(suggestions),
    )


def radio(
    path: str,
    label: str,
    options: Iterable[tuple[str, str]],
    value: str,
    *,
    event: str,
    cls: str,
    disabled: bool = False,
) -> Node:
    """A radio group of ``(value, label)`` options."""
    return _node(
        "radio",
        path,
        cls,
        path=path,
        label=label,
        options=[{"value": option, "label": shown} for option, shown in options],
        value=value,
        event=event,
        disabled=disabled,
    )


def checkbox(path: str, label: str, value: bool, *, event: str, cls: str, disabled: bool = False) -> Node:
    return _node("checkbox", path, cls, path=path, label=label, value=value, event=event, disabled=disabled)


def table(key: str, columns: Iterable[str], rows: Iterable[Iterable[str]], *, caption: str = "", cls: str = "") -> Node:
    return _node(
        "table", key, cls, caption=caption, columns=list(columns), rows=[[str(cell) for cell in row] for row in rows]
    )


def svg(key: str, markup: str, label: str, *, cls: str = "") -> Node:
    """A picture drawn by Python (numbers and escaped text only), with its text alternative ``label``."""
    return _node("svg", key, cls, markup=markup, label=label)


def disclosure(key: str, label: str, *, open: bool, event: str, children: Iterable[Node | None], cls: str = "") -> Node:
    """A show/hide button and, only while open, its ``children``."""
    return _node(
        "disclosure", key, cls, label=label, open=open, event=event, children=_children(children) if open else []
    )


def dialog(
    key: str,
    title: str,
    *children: Node | None,
    cancel_event: str,
    submit_event: str = "",
    focus: str = "",
    busy: bool = False,
    cls: str = "",
) -> Node:
    """A modal dialog over the page; Escape sends ``cancel_event``, Enter in a field ``submit_event``."""
    return _node(
        "dialog",
        key,
        cls,
        title=title,
        children=_children(children),
        cancel_event=cancel_event,
        submit_event=submit_event,
        focus=focus,
        busy=busy,
    )


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node under it, in page order."""
    yield node
    for child in node.get("children", ()):
        yield from walk(child)


def find(node: Node, css_class: str) -> list[Node]:
    """Every node under ``node`` (itself included) that carries ``css_class``, in page order."""
    return [each for each in walk(node) if css_class in each.get("cls", "").split()]


def text_lines(node: Node, typed_keys: dict[str, str] | None = None) -> list[str]:
    """What the admin sees, as plain lines: text, labels, field values and buttons.

    A key field shows one bullet per typed character (at most 8, from ``typed_keys``, keyed by path)
    or its placeholder; the key itself is never shown.
    """
    typed_keys = typed_keys or {}
    lines: list[str] = []
    kind = node["kind"]
    if kind in ("text", "ago", "heading"):
        lines.extend(line.strip() for line in node["text"].splitlines() if line.strip())
    elif kind in ("region", "dialog"):
        lines.append(node["title"])
    elif kind == "button":
        lines.append(f"[{node['label']}]")
    elif kind == "disclosure":
        lines.append(f"[{'▾' if node['open'] else '▸'} {node['label']}]")
    elif kind == "field":
        if node["input"] == "key":
            typed = typed_keys.get(node["path"], "")
            shown = "•" * min(len(typed), 8) or node["placeholder"]
        else:
            shown = node["value"]
        optional = " (optional)" if node["optional"] else ""
        lines.append(f"{node['label']}{optional}: {shown}")
        lines.extend(line for line in (node["error"], node["notice"]) if line)
    elif kind == "radio":
        choices = (
            f"({option['label']})" if option["value"] == node["value"] else option["label"]
            for option in node["options"]
        )
        lines.append(f"{node['label']}: {' | '.join(choices)}")
    elif kind == "checkbox":
        lines.append(f"[{'x' if node['value'] else ' '}] {node['label']}")
    elif kind == "table":
        if node["caption"]:
            lines.append(node["caption"])
        lines.append("  ".join(node["columns"]))
        lines.extend("  ".join(row) for row in node["rows"])
    elif kind == "svg":
        lines.append(node["label"])
    for child in node.get("children", ()):
        lines.extend(text_lines(child, typed_keys))
    return lines
