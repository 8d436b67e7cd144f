// DOM building and formatting shared by every view. Data never goes through
// innerHTML: elements are built with h(), text is always a text node.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

// A table: its class, its column headers, its rows.
export function dataTable(cls, headers, rows) {
  return h(
    "table",
    { class: cls },
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let uid = 0;
export const nextId = (prefix) => `${prefix}-${++uid}`;

// Times: always UTC, with a relative form next to it.

const pad = (n) => String(n).padStart(2, "0");

export function utc(iso, { seconds = true } = {}) {
  if (!iso) return "";
  const d = new Date(iso);
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${day} ${time}${seconds ? `:${pad(d.getUTCSeconds())}` : ""} UTC`;
}

export function relative(iso, now = Date.now()) {
  const diff = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(diff);
  let text;
  if (abs < 10) return "just now";
  if (abs < 60) text = `${Math.round(abs)} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400 * 2) text = `${Math.round(abs / 3600)} h`;
  else if (abs < 86400 * 60) text = `${Math.round(abs / 86400)} days`;
  else if (abs < 86400 * 730) text = `${Math.round(abs / (86400 * 30.4))} months`;
  else text = `${Math.round(abs / (86400 * 365.25))} years`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

// A <time> showing "3 min ago" with the UTC instant as its tooltip; kept fresh by tick().
export function when(iso, { seconds = true } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: utc(iso, { seconds }), dataset: { rel: "" } }, relative(iso));
}

// The UTC instant in full with the relative form after it, for detail panes.
export function whenFull(iso, opts) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("span", {}, utc(iso, opts), " ", h("span", { class: "muted" }, "(", when(iso, opts), ")"));
}

export function tick() {
  for (const el of document.querySelectorAll("time[data-rel]")) {
    el.textContent = relative(el.getAttribute("datetime"));
  }
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

export const shortId = (id) => (id ? id.slice(0, 8) : "");

// Whether the signed-in role may do what needs `role`: the api's GET /session says whose
// rights it has (`may`); the api refuses anything else with 403 whatever the page shows.
// Elements marked `data-needs` are hidden from the roles without those rights (app.css).
export const may = (role) => (document.body.dataset.may ?? "").split(" ").includes(role);

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function badge(status) {
  return h("span", { class: `badge s-${status}` }, status);
}

export function progressBar(progress, status) {
  const pct =
    progress && progress.percent !== null && progress.percent !== undefined
      ? Math.max(0, Math.min(100, progress.percent))
      : null;
  const bar = h("div", {
    class: `progress${pct === null ? " indeterminate" : ""} s-${status}`,
    role: "progressbar",
    "aria-valuemin": 0,
    "aria-valuemax": 100,
    "aria-valuenow": pct === null ? null : Math.round(pct),
    "aria-label": "progress",
  });
  const fill = h("div", { class: "fill" });
  if (pct !== null) fill.style.width = `${pct}%`;
  bar.append(fill);
  return bar;
}

// Tabs are links (each tab is a route), marked for assistive technology.
export function tabs(items, current) {
  return h(
    "nav",
    { class: "tabs", "aria-label": "Sections" },
    items.map(([key, label, href]) =>
      h("a", { href, class: key === current ? "active" : "", "aria-current": key === current ? "page" : null }, label),
    ),
  );
}

export function notice(kind, ...text) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...text);
}

// A field: label, control, hint and a slot for the api's error about it.
export function field(label, control, { hint, name, wide } = {}) {
  const id = control.id || nextId("f");
  control.id = id;
  if (name) control.dataset.field = name;
  const hintEl = hint ? h("div", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h(
    "div",
    { class: `field${wide ? " wide" : ""}`, dataset: name ? { fieldBox: name } : {} },
    h("label", { for: id }, label),
    control,
    hintEl,
  );
}

// Shows an api error next to the field it names, or at the top of the form.
export function showError(form, err) {
  clearErrors(form);
  const name = err.field ? err.field.replace(/\[(\d+)\]/g, ".$1") : null;
  let box = null;
  for (let n = name; n && !box; n = n.includes(".") ? n.slice(0, n.lastIndexOf(".")) : null) {
    box = form.querySelector(`[data-field-box="${CSS.escape(n)}"]`);
  }
  let message = err.message || String(err);
  if (box) {
    // The api names fields as its body does (source_id): say the label the form shows.
    const key = name.slice(name.lastIndexOf(".") + 1);
    const label = box.querySelector("label, legend, .label")?.textContent.trim();
    if (label && key.includes("_")) message = message.replaceAll(key, `“${label}”`);
    const control = box.querySelector("[data-field]") || box.querySelector("input,select,textarea");
    const msg = h("div", { class: "field-error", id: nextId("err"), role: "alert" }, message);
    box.append(msg);
    box.classList.add("invalid");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-errormessage", msg.id);
      control.focus();
    }
    return;
  }
  const slot = form.querySelector(".form-error");
  const text = name ? `${name}: ${message}` : message;
  if (slot) replace(slot, notice("error", text));
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-errormessage");
  }
  const slot = form.querySelector(".form-error");
  if (slot) slot.replaceChildren();
}

// A form's submission: its errors cleared, its button busy while `action` runs, the api's
// refusal shown in the form.
export function onSubmit(form, button, action) {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(button, async () => {
      try {
        await action();
      } catch (err) {
        showError(form, err);
      }
    });
  });
}

// Runs an async action from a button: disabled while it runs, label kept.
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function copyButton(text, label = "Copy") {
  return h(
    "button",
    {
      type: "button",
      class: "ghost small",
      title: "Copy to the clipboard",
      onclick: async (e) => {
        await navigator.clipboard?.writeText(text);
        e.currentTarget.textContent = "Copied";
      },
    },
    label,
  );
}
