// The AI Settings panel's front end: a generic renderer of the node tree in the `state` trait
// (ai_admin_widgets/widgets/view.py describes the node kinds). It holds no wording and makes no
// decision, except the banner shown when the kernel can no longer answer.
//
// Rendering is keyed: a node keeps its DOM element between updates (matched by kind and key
// among its siblings), so focus, the caret and what is being typed survive a new state. An
// input's text is set from the state only when the state's value changed. A key field's text is
// never in the state: it is sent to the kernel only in custom messages (leaving the field, Save,
// Enter), and replaced or emptied only by the kernel's "key" and "clear-keys" messages.

const POLL_MS = 2000; // panel.poll while the page is visible: the kernel catches up with changes made elsewhere
const AGO_MS = 20000; // "… ago" texts are recomputed this often
const PATIENCE_MS = 30000; // a Save or Test with no sign of life from the kernel for this long: the banner

const BANNER_LOST =
  "The kernel restarted or the connection was lost, so this panel stopped working. " +
  "Nothing was saved unless the row below says so. Run the cell again.";
const BANNER_SILENT =
  "The kernel has not answered for 30 seconds, so this panel cannot tell whether the last Save or Test finished. " +
  "Nothing was saved unless the row below says so; if the kernel was restarted, run the cell again.";
const BANNER_UNANSWERED =
  "This panel has had no answer from the kernel since it was drawn: it may be from a notebook opened again " +
  "(drawn from its saved output) or a kernel that was restarted. Run the cell again to use it.";
const FIRST_ANSWER_MS = 10000; // a view the kernel has not answered at all after this long: the banner (lifted if it does)

// Per panel (its state's "instance"), the view the admin last used: a dialog opens as a modal only
// there when the same panel is shown twice (one modal at a time), and in every view otherwise.
const lastUsed = new Map();

function plural(count, unit) {
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}

// The same words as ai_admin_widgets.health.time_ago.
function timeAgo(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return "";
  }
  const seconds = (Date.now() - then) / 1000;
  if (seconds < 60) {
    return "just now";
  }
  if (seconds < 3600) {
    return `${plural(Math.floor(seconds / 60), "minute")} ago`;
  }
  if (seconds < 86400) {
    return `${plural(Math.floor(seconds / 3600), "hour")} ago`;
  }
  return `${plural(Math.floor(seconds / 86400), "day")} ago`;
}

function agoText(node) {
  const words = timeAgo(node.iso);
  if (!words) {
    return node.text;
  }
  return node.template.replace(/\{\{|\}\}|\{ago\}/g, (match) =>
    match === "{ago}" ? words : match[0],
  );
}

function classes(element, cls, extra) {
  const names = `${cls || ""} ${extra || ""}`.split(/\s+/).filter(Boolean);
  element.className = names.join(" ");
}

function render({ model, el }) {
  const uid = `aiw-${Math.random().toString(36).slice(2, 10)}`;
  let counter = 0;
  const newId = () => `${uid}-${++counter}`;

  const root = document.createElement("div");
  root.className = "aiw-panel";
  // JupyterLab's notebook shortcuts (A, B, D D, Escape, …) must not fire while the panel is used.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  el.append(root);

  // No key pressed in the panel reaches JupyterLab's notebook shortcuts (M, A, B, D D, … in command mode,
  // which fire on a focused button or radio too): JupyterLab listens for them as the event bubbles up
  // (bubblingKeydown), so stopping it here keeps them out. Ctrl, Alt and Meta combinations go on (Ctrl+S).
  root.addEventListener("keydown", (event) => {
    if (!event.ctrlKey && !event.altKey && !event.metaKey) {
      event.stopPropagation();
    }
  });

  // A field left because a button is being clicked sends no field.blur of its own: the button's event
  // carries every field's text (and Save tidies it), and a redraw between the press and the release
  // would move the button from under the pointer and lose the click.
  let pressing = null;
  root.addEventListener("pointerdown", (event) => {
    pressing = event.target instanceof Element ? event.target.closest("button") : null;
  }, true);
  const released = () => {
    pressing = null;
  };
  document.addEventListener("pointerup", released, true);
  document.addEventListener("pointercancel", released, true);

  // Whether the keyboard focus was last in this view and dropped from it (a button disabled while it
  // works, Save or Test, lets the focus fall to the page): it is then given back, to the row or where the
  // kernel says, as if it had stayed.
  let owned = false;
  let lastFocused = null;
  root.addEventListener("focusin", (event) => {
    owned = true;
    lastFocused = event.target;
  });
  const elsewhere = (event) => {
    if (event.target instanceof Node && !root.contains(event.target)) {
      owned = false;
    }
  };
  document.addEventListener("focusin", elsewhere, true);
  function focusDropped() {
    return owned && (!document.activeElement || document.activeElement === document.body);
  }

  let top = null; // the record of the root node
  let stopped = false; // the banner is up
  let lastSign = Date.now(); // the last time the kernel answered (a state, or "alive")
  let answered = false; // the kernel has answered this view at least once (a custom message)
  const inputs = new Map(); // path -> record of a rendered field, radio or checkbox

  // -- sending ------------------------------------------------------------------ //

  function values() {
    const found = {};
    for (const [path, record] of inputs) {
      if (record.read) {
        const value = record.read();
        if (value !== undefined) {
          found[path] = value;
        }
      }
    }
    return found;
  }

  function keys() {
    const found = {};
    for (const [path, record] of inputs) {
      if (record.secret && record.input.value) {
        found[path] = record.input.value;
      }
    }
    return found;
  }

  function instance() {
    return (model.get("state") || {}).instance;
  }

  function send(content, withKeys) {
    if (stopped) {
      return;
    }
    lastUsed.set(instance(), uid);
    const message = { ...content, values: content.values || values() };
    if (withKeys) {
      message.keys = keys();
    }
    model.send(message);
  }

  // -- drawing ------------------------------------------------------------------ //

  function create(node, context) {
    const record = { kind: node.kind, key: node.key, node: null, children: new Map() };
    const make = (tag) => document.createElement(tag);
    switch (node.kind) {
      case "box":
        record.el = make("div");
        record.body = record.el;
        break;
      case "region": {
        record.el = make("section");
        record.title = make("h4");
        record.title.id = newId();
        record.el.setAttribute("aria-labelledby", record.title.id);
        record.body = make("div");
        record.el.append(record.title, record.body);
        break;
      }
      case "heading":
        record.el = make(`h${Math.min(Math.max(node.level || 3, 2), 5)}`);
        break;
      case "text":
        record.el = make("div");
        break;
      case "ago":
        record.el = make("time");
        break;
      case "button":
        record.el = make("button");
        record.el.type = "button";
        record.el.addEventListener("click", () => {
          const current = record.node;
          if (!current.disabled) {
            send({ event: current.event }, current.keys);
          }
        });
        break;
      case "field":
        createField(record, node, context);
        break;
      case "radio":
        createRadio(record, node);
        break;
      case "checkbox": {
        record.el = make("label");
        record.input = make("input");
        record.input.type = "checkbox";
        record.label = make("span");
        record.el.append(record.input, record.label);
        record.read = () => record.input.checked;
        record.input.addEventListener("change", () => {
          const current = record.node;
          send({ event: current.event, path: current.path, value: record.input.checked });
        });
        break;
      }
      case "table":
        record.el = make("table");
        break;
      case "svg":
        record.el = make("div");
        record.el.setAttribute("role", "img");
        break;
      case "disclosure": {
        record.el = make("div");
        record.el.className = "aiw-disclosure";
        record.button = make("button");
        record.button.type = "button";
        record.body = make("div");
        record.el.append(record.button, record.body);
        record.button.addEventListener("click", () => send({ event: record.node.event }));
        break;
      }
      case "dialog":
        createDialog(record);
        break;
      default:
        record.el = make("div");
    }
    return record;
  }

  function createField(record, node, context) {
    record.el = document.createElement("div");
    record.el.className = "aiw-field-row";
    record.label = document.createElement("label");
    record.label.className = "aiw-field-label";
    record.input = document.createElement("input");
    record.input.id = newId();
    record.label.htmlFor = record.input.id;
    record.secret = node.input === "key";
    record.input.type = record.secret ? "password" : "text";
    record.input.autocomplete = record.secret ? "new-password" : "off";
    record.input.spellcheck = false;
    record.input.setAttribute("autocapitalize", "off");
    record.input.setAttribute("data-lm-suppress-shortcuts", "true");
    record.help = document.createElement("div");
    record.help.id = newId();
    record.help.className = "aiw-field-help aiw-tone-help";
    record.error = document.createElement("div");
    record.error.id = newId();
    record.error.className = "aiw-field-error aiw-tone-error";
    record.error.setAttribute("role", "alert");
    record.notice = document.createElement("div");
    record.notice.id = newId();
    record.notice.className = "aiw-field-notice aiw-tone-help";
    record.suggestions = document.createElement("datalist");
    record.suggestions.id = newId();
    const column = document.createElement("div");
    column.className = "aiw-field-column";
    column.append(record.input, record.suggestions, record.help, record.error, record.notice);
    record.el.append(record.label, column);
    record.stateValue = null;
    record.shown = ""; // the text the input was last given (by the state) or left with
    record.read = record.secret ? null : () => record.input.value;
    record.input.addEventListener("blur", () => {
      if (pressing && root.contains(pressing)) {
        return; // the button's own event carries this field's text
      }
      // The kernel answers with a state holding the field's tidied text: put it in the input even when it
      // equals what the state said before (the admin typed the same untidy text again).
      record.stateValue = null;
      record.shown = record.input.value;
      send({ event: "field.blur", path: record.node.path, value: record.input.value });
    });
    record.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && record.context && record.context.submit) {
        event.preventDefault();
        event.stopPropagation();
        send({ event: record.context.submit }, true);
      }
    });
    record.context = context;
  }

  function createRadio(record, node) {
    record.el = document.createElement("div");
    record.el.setAttribute("role", "radiogroup");
    record.caption = document.createElement("span");
    record.caption.className = "aiw-radio-label";
    record.caption.setAttribute("aria-hidden", "true");
    record.options = document.createElement("div");
    record.options.className = "aiw-radio-options";
    record.el.append(record.caption, record.options);
    record.chosen = node.value;
    record.read = () => record.chosen;
    const choose = (value, focus) => {
      const current = record.node;
      if (current.disabled || stopped) {
        return;
      }
      const changed = value !== record.chosen;
      record.chosen = value;
      paintRadio(record, focus);
      if (changed) {
        send({ event: current.event, path: current.path, value });
      }
    };
    record.choose = choose;
    record.options.addEventListener("keydown", (event) => {
      const values = record.node.options.map((option) => option.value);
      let index = values.indexOf(record.chosen);
      if (["ArrowRight", "ArrowDown"].includes(event.key)) {
        index = (index + 1) % values.length;
      } else if (["ArrowLeft", "ArrowUp"].includes(event.key)) {
        index = (index - 1 + values.length) % values.length;
      } else if (event.key === " " || event.key === "Enter") {
        const focused = document.activeElement && document.activeElement.dataset.value;
        if (focused !== undefined) {
          index = values.indexOf(focused);
        }
      } else {
        return;
      }
      event.preventDefault();
      event.stopPropagation();
      choose(values[index], true);
    });
  }

  function paintRadio(record, focus) {
    for (const option of record.options.children) {
      const checked = option.dataset.value === record.chosen;
      option.setAttribute("aria-checked", checked ? "true" : "false");
      option.tabIndex = checked ? 0 : -1;
      if (checked && focus) {
        option.focus();
      }
    }
  }

  function createDialog(record) {
    record.el = document.createElement("dialog");
    record.title = document.createElement("h4");
    record.title.id = newId();
    record.el.setAttribute("aria-labelledby", record.title.id);
    record.el.setAttribute("data-lm-suppress-shortcuts", "true");
    record.body = document.createElement("div");
    record.body.className = "aiw-dialog-body";
    record.el.append(record.title, record.body);
    // Escape anywhere in the dialog (the browser's own cancel, too) asks the kernel to cancel.
    record.el.addEventListener("cancel", (event) => {
      event.preventDefault();
      send({ event: record.node.cancel_event });
    });
    record.el.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        send({ event: record.node.cancel_event });
      }
    });
    record.opened = false;
  }

  function update(record, node, context) {
    const previous = record.node;
    record.node = node;
    const el = record.el;
    switch (node.kind) {
      case "box":
        classes(el, node.cls);
        setAttribute(el, "role", node.role);
        setAttribute(el, "aria-label", node.label);
        break;
      case "region":
        classes(el, node.cls);
        record.title.textContent = node.title;
        break;
      case "heading":
      case "text":
        classes(el, node.cls, node.kind === "text" ? `aiw-text aiw-tone-${node.tone}` : "");
        if (node.kind === "text") {
          setAttribute(el, "role", node.alert ? "alert" : node.tone === "busy" ? "status" : "");
        }
        if (el.textContent !== node.text) {
          el.textContent = node.text;
        }
        break;
      case "ago":
        classes(el, node.cls, `aiw-text aiw-tone-${node.tone}`);
        el.dateTime = node.iso;
        el.textContent = agoText(node);
        break;
      case "button":
        classes(el, node.cls, node.tone ? `aiw-tone-${node.tone}` : "");
        if (el.textContent !== node.label) {
          el.textContent = node.label;
        }
        el.disabled = Boolean(node.disabled);
        setAttribute(el, "aria-label", node.aria_label);
        break;
      case "field":
        updateField(record, node, context);
        break;
      case "radio": {
        classes(el, node.cls, "aiw-radio");
        el.setAttribute("aria-label", node.label);
        record.caption.textContent = node.label;
        const same =
          previous &&
          JSON.stringify(previous.options) === JSON.stringify(node.options);
        if (!same) {
          record.options.replaceChildren();
          for (const option of node.options) {
            const item = document.createElement("div");
            item.setAttribute("role", "radio");
            item.className = `aiw-option aiw-option-${option.value}`;
            item.dataset.value = option.value;
            item.textContent = option.label;
            item.addEventListener("click", () => record.choose(option.value, true));
            record.options.append(item);
          }
        }
        if (!previous || previous.value !== node.value) {
          record.chosen = node.value;
        }
        for (const item of record.options.children) {
          item.setAttribute("aria-disabled", node.disabled ? "true" : "false");
        }
        setAttribute(el, "aria-disabled", node.disabled ? "true" : "");
        paintRadio(record, false);
        break;
      }
      case "checkbox":
        classes(record.input, node.cls);
        record.label.textContent = ` ${node.label}`;
        if (!previous || previous.value !== node.value) {
          record.input.checked = Boolean(node.value);
        }
        record.input.disabled = Boolean(node.disabled);
        break;
      case "table": {
        classes(el, node.cls);
        const caption = node.caption ? `<caption></caption>` : "";
        el.innerHTML = `${caption}<thead><tr></tr></thead><tbody></tbody>`;
        if (node.caption) {
          el.querySelector("caption").textContent = node.caption;
        }
        const head = el.querySelector("thead tr");
        for (const column of node.columns) {
          const cell = document.createElement("th");
          cell.scope = "col";
          cell.textContent = column;
          head.append(cell);
        }
        const body = el.querySelector("tbody");
        for (const row of node.rows) {
          const line = document.createElement("tr");
          for (const value of row) {
            const cell = document.createElement("td");
            cell.textContent = value;
            line.append(cell);
          }
          body.append(line);
        }
        break;
      }
      case "svg":
        classes(el, node.cls, "aiw-svg");
        el.setAttribute("aria-label", node.label);
        if (!previous || previous.markup !== node.markup) {
          el.innerHTML = node.markup; // made by Python from numbers and escaped text only
        }
        break;
      case "disclosure":
        classes(record.button, node.cls, "aiw-disclosure-button");
        record.button.textContent = `${node.open ? "▾" : "▸"} ${node.label}`;
        record.button.setAttribute("aria-expanded", node.open ? "true" : "false");
        break;
      case "dialog":
        classes(el, node.cls, "aiw-dialog");
        record.title.textContent = node.title;
        el.setAttribute("aria-busy", node.busy ? "true" : "false");
        break;
      default:
        break;
    }
    // Enter in a text field sends the submit event of the nearest dialog or box that names one.
    const inner =
      node.kind === "dialog" || (node.kind === "box" && node.submit_event)
        ? { submit: node.submit_event }
        : context;
    if (record.body) {
      drawChildren(record, node.children || [], inner);
    }
  }

  function updateField(record, node, context) {
    record.context = context;
    classes(record.input, node.cls, "aiw-input");
    const optional = node.optional ? " (optional)" : "";
    record.label.textContent = `${node.label}${optional}`;
    record.input.placeholder = node.placeholder || "";
    record.input.disabled = Boolean(node.disabled);
    if (!record.secret && node.value !== record.stateValue) {
      record.stateValue = node.value;
      // Not over what the admin is typing: in the field, with other text than it was last given or left with.
      const typing = document.activeElement === record.input && record.input.value !== record.shown;
      if (!typing) {
        if (record.input.value !== node.value) {
          record.input.value = node.value;
        }
        record.shown = node.value;
      }
    }
    const offered = record.secret ? [] : node.suggestions || [];
    if (JSON.stringify(offered) !== record.offered) {
      record.offered = JSON.stringify(offered);
      record.suggestions.replaceChildren(
        ...offered.map((value) => {
          const option = document.createElement("option");
          option.value = value;
          return option;
        }),
      );
      setAttribute(record.input, "list", offered.length ? record.suggestions.id : "");
    }
    record.help.textContent = node.help || "";
    record.error.textContent = node.error || "";
    record.notice.textContent = node.notice || "";
    const described = [record.help, record.error, record.notice]
      .filter((part) => part.textContent)
      .map((part) => part.id);
    setAttribute(record.input, "aria-describedby", described.join(" "));
    record.input.setAttribute("aria-invalid", node.error ? "true" : "false");
    record.help.hidden = !node.help;
    record.error.hidden = !node.error;
    record.notice.hidden = !node.notice;
  }

  function setAttribute(element, name, value) {
    if (value) {
      element.setAttribute(name, value);
    } else {
      element.removeAttribute(name);
    }
  }

  function register(record) {
    if (["field", "radio", "checkbox"].includes(record.kind) && record.node.path) {
      inputs.set(record.node.path, record);
    }
  }

  function forget(record) {
    if (record.kind === "dialog" && record.el.open) {
      const hadFocus = record.el.contains(document.activeElement) || focusDropped();
      record.el.close();
      if (hadFocus) {
        focusRow();
      }
    }
    if (record.node && record.node.path && inputs.get(record.node.path) === record) {
      inputs.delete(record.node.path);
    }
    for (const child of record.children.values()) {
      forget(child);
    }
  }

  function drawChildren(record, nodes, context) {
    const kept = new Map();
    const order = [];
    for (const node of nodes) {
      const id = `${node.kind}:${node.key}`;
      let child = record.children.get(id);
      if (!child || kept.has(id)) {
        child = create(node, context);
      }
      kept.set(id, child);
      update(child, node, context);
      register(child);
      order.push(child);
    }
    for (const [id, child] of record.children) {
      if (kept.get(id) !== child) {
        forget(child);
        child.el.remove();
      }
    }
    record.children = kept;
    let position = record.body.firstChild;
    for (const child of order) {
      if (child.el !== position) {
        record.body.insertBefore(child.el, position);
      } else {
        position = position.nextSibling;
      }
    }
    for (const child of order) {
      if (child.kind === "dialog" && !child.opened && child.el.isConnected) {
        const used = lastUsed.get(instance());
        if (used === undefined || used === uid) {
          openDialog(child);
        } else {
          child.opened = true; // the same panel's other view holds it; here it stays closed
        }
      }
    }
  }

  function openDialog(record) {
    record.opened = true;
    if (!record.el.open) {
      try {
        record.el.showModal();
      } catch (error) {
        record.el.setAttribute("open", "");
      }
    }
    const target = record.node.focus && record.el.querySelector(`.${CSS.escape(record.node.focus)}`);
    (target || record.el.querySelector("input, button, [role=radio]"))?.focus();
  }

  function focusRow() {
    const target = root.querySelector(".aiw-row .aiw-edit") || root.querySelector(".aiw-row .aiw-add");
    target?.focus();
  }

  function draw() {
    const state = model.get("state") || {};
    if (!state.root) {
      return;
    }
    lastSign = Date.now();
    if (stopped && stopped !== "silent") {
      return;
    }
    if (stopped === "silent") {
      lift();
    }
    const holder = { el: root, body: root, children: top ? new Map([[`${top.kind}:${top.key}`, top]]) : new Map() };
    drawChildren(holder, [state.root], {});
    top = holder.children.values().next().value;
    classes(root, `aiw-panel ${state.root.cls || ""}`);
    if (!root.querySelector("dialog[open]") && focusDropped()) {
      // The focus fell from a control that was busy (Test): back to it once it may be used, else to the row.
      if (lastFocused instanceof HTMLElement && lastFocused.isConnected && root.contains(lastFocused)) {
        if (!lastFocused.disabled) {
          lastFocused.focus();
        }
      } else {
        focusRow();
      }
    }
  }

  // -- the banner ---------------------------------------------------------------- //

  function stop(kind) {
    if (stopped === "lost" || (stopped && kind === "silent")) {
      return;
    }
    stopped = kind;
    root.querySelector(".aiw-banner")?.remove();
    const banner = document.createElement("div");
    banner.className = "aiw-banner";
    banner.setAttribute("role", "alert");
    banner.textContent = kind === "lost" ? BANNER_LOST : answered ? BANNER_SILENT : BANNER_UNANSWERED;
    root.prepend(banner);
    for (const dialog of root.querySelectorAll("dialog")) {
      if (dialog.open) {
        dialog.close();
      }
    }
    for (const control of root.querySelectorAll("button, input, select, textarea")) {
      control.disabled = true;
    }
    for (const control of root.querySelectorAll("[role=radio], [role=radiogroup]")) {
      control.setAttribute("aria-disabled", "true");
      control.tabIndex = -1;
    }
    for (const secret of root.querySelectorAll("input[type=password]")) {
      secret.value = "";
    }
    for (const busy of root.querySelectorAll(".aiw-tone-busy")) {
      busy.textContent = ""; // no "Authenticating…" stays
    }
    root.classList.add("aiw-stopped");
  }

  function lift() {
    // The kernel answered again after a silence: draw everything afresh from its state.
    stopped = false;
    root.querySelector(".aiw-banner")?.remove();
    root.classList.remove("aiw-stopped");
    if (top) {
      forget(top);
      top.el.remove();
      top = null;
    }
  }

  function busy() {
    return Boolean(root.querySelector("dialog[aria-busy=true], .aiw-tone-busy"));
  }

  // -- messages from the kernel ------------------------------------------------- //

  function onMessage(message) {
    if (!message || typeof message !== "object") {
      return;
    }
    lastSign = Date.now();
    answered = true;
    if (stopped === "silent") {
      lift();
      draw();
    }
    if (message.event === "focus" && typeof message.cls === "string") {
      const holds = root.contains(document.activeElement) || root.querySelector("dialog[open]") || focusDropped();
      const target = root.querySelector(`.${CSS.escape(message.cls)}`);
      if (holds && target) {
        target.focus();
      }
    } else if (message.event === "key" && typeof message.path === "string") {
      const record = inputs.get(message.path);
      if (record && record.secret && typeof message.value === "string") {
        record.input.value = message.value;
      }
    } else if (message.event === "clear-keys") {
      for (const record of inputs.values()) {
        if (record.secret) {
          record.input.value = "";
        }
      }
    }
  }

  const onState = () => draw();
  const onLost = () => stop("lost");
  model.on("change:state", onState);
  model.on("msg:custom", onMessage);
  // @jupyter-widgets/base sets comm_live to false (and triggers comm_live_update) on every model
  // when JupyterLab restarts the kernel; the comm closes when the kernel shuts the widget down.
  model.on("comm_live_update", onLost);
  model.on("comm:close", onLost);
  draw();
  // A view drawn from a notebook's saved widget state has no kernel behind it (no comm): it is told at once
  // by @jupyter-widgets/base's comm_live where the model exposes it, else by a first poll left unanswered.
  if (model.comm_live === false) {
    stop("silent");
  }
  try {
    model.send({ event: "panel.poll", values: {} });
  } catch (error) {
    stop("silent");
  }
  const firstAnswer = setTimeout(() => {
    if (!answered && !stopped && el.isConnected) {
      stop("silent");
    }
  }, FIRST_ANSWER_MS);

  const poll = setInterval(() => {
    if (!el.isConnected) {
      return;
    }
    if (document.visibilityState === "visible" && !stopped) {
      model.send({ event: "panel.poll", values: {} });
    }
    if (!stopped && busy() && Date.now() - lastSign > PATIENCE_MS) {
      stop("silent");
    }
  }, POLL_MS);
  const clock = setInterval(() => {
    if (!top || !el.isConnected) {
      return;
    }
    for (const time of root.querySelectorAll("time")) {
      const record = findRecord(top, time);
      if (record) {
        time.textContent = agoText(record.node);
      }
    }
  }, AGO_MS);

  function findRecord(record, element) {
    if (record.el === element) {
      return record;
    }
    for (const child of record.children.values()) {
      const found = findRecord(child, element);
      if (found) {
        return found;
      }
    }
    return null;
  }

  return () => {
    clearInterval(poll);
    clearInterval(clock);
    clearTimeout(firstAnswer);
    model.off("change:state", onState);
    model.off("msg:custom", onMessage);
    model.off("comm_live_update", onLost);
    model.off("comm:close", onLost);
    document.removeEventListener("pointerup", released, true);
    document.removeEventListener("focusin", elsewhere, true);
    document.removeEventListener("pointercancel", released, true);
    for (const record of inputs.values()) {
      if (record.secret) {
        record.input.value = "";
      }
    }
  };
}

export default { render };
