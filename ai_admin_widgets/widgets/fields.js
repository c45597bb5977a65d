// The form's input fields: a visible <label> tied to its input, Enter submits, Escape cancels,
// and aria-describedby points at the field's help text and its error (an aria-live region).
// A "password" field (the API Key) never holds its text as widget state: what is typed goes
// to the kernel as custom messages only, so a saved notebook's widget state never holds it.
// A "text" field synchronizes its value as usual.

function render({ model, el }) {
  const secret = model.get("kind") === "password";
  const id = `aiw-input-${Math.random().toString(36).slice(2)}`;
  const row = document.createElement("div");
  row.className = "aiw-input-row";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.className = "aiw-input-label";
  const input = document.createElement("input");
  input.type = secret ? "password" : "text";
  input.id = id;
  input.className = "aiw-input";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.setAttribute("autocapitalize", "off");
  // JupyterLab's notebook shortcuts (A, B, D D, …) must not fire while typing here.
  input.setAttribute("data-lm-suppress-shortcuts", "true");
  row.append(label, input);
  el.append(row);

  const show = () => {
    label.textContent = model.get("description");
    input.placeholder = model.get("placeholder");
    input.disabled = model.get("disabled");
    const described = model.get("described_by");
    if (described) {
      input.setAttribute("aria-describedby", described);
    } else {
      input.removeAttribute("aria-describedby");
    }
    input.setAttribute("aria-invalid", model.get("invalid") ? "true" : "false");
    const context = model.get("context");
    if (context) {
      input.setAttribute("aria-label", `${model.get("description")}, ${context}`);
    } else {
      input.removeAttribute("aria-label");
    }
    if (!secret && input.value !== model.get("value")) {
      input.value = model.get("value");
    }
  };
  show();
  for (const name of ["description", "placeholder", "disabled", "described_by", "invalid", "context", "value"]) {
    model.on(`change:${name}`, show);
  }

  const hand_over = () => {
    if (secret) {
      model.send({ type: "key", value: input.value });
    } else if (model.get("value") !== input.value) {
      model.set("value", input.value);
      model.save_changes();
    }
  };
  input.addEventListener("input", hand_over);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      event.stopPropagation();
      hand_over();
      model.send({ type: "submit" });
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      model.send({ type: "cancel" });
    }
  });
  model.on("msg:custom", (message) => {
    if (message && message.type === "clear") {
      input.value = "";
    } else if (message && message.type === "focus") {
      input.focus();
    }
  });
}

export default { render };
