// The API Key field: a password input whose text is never synchronized widget state.
// What is typed goes to the kernel as custom messages only; the kernel keeps it in
// memory, so a saved notebook's widget state never holds it.

function render({ model, el }) {
  const id = `aiw-key-${Math.random().toString(36).slice(2)}`;
  const row = document.createElement("div");
  row.className = "aiw-key-row";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.className = "aiw-key-label";
  const input = document.createElement("input");
  input.type = "password";
  input.id = id;
  input.className = "aiw-key-input";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.setAttribute("autocapitalize", "off");
  row.append(label, input);
  el.append(row);

  const show = () => {
    label.textContent = model.get("description");
    input.placeholder = model.get("placeholder");
    input.disabled = model.get("disabled");
    const error = model.get("error_id");
    if (error) {
      input.setAttribute("aria-describedby", error);
    } else {
      input.removeAttribute("aria-describedby");
    }
  };
  show();
  model.on("change:description", show);
  model.on("change:placeholder", show);
  model.on("change:disabled", show);
  model.on("change:error_id", show);

  const hand_over = () => model.send({ type: "key", value: input.value });
  input.addEventListener("input", hand_over);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      hand_over();
      model.send({ type: "submit" });
    } else if (event.key === "Escape") {
      event.preventDefault();
      model.send({ type: "cancel" });
    }
  });
  model.on("msg:custom", (message) => {
    if (message && message.type === "clear") {
      input.value = "";
    }
  });
}

export default { render };
