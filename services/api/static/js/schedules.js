// Schedules: the attach-schedule fields, and schedule tables.

import { del, patch, post, unavailableText } from "./api.js";
import { busy, clearErrors, field, h, may, nextId, notice, replace, showError, utc, when } from "./dom.js";

const RECURRENCES = [
  ["twice_daily", "Twice daily (every 12 h)"],
  ["daily", "Daily (every 24 h)"],
  ["weekly", "Weekly (every 7 days)"],
  ["every_30_days", "Every 30 days"],
  ["custom", "Custom: days, hours, minutes"],
];

// Start times are typed and shown in UTC, to the minute, as everywhere in the UI (a
// datetime-local box would show the browser's zone and locale instead).
const MINUTE = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})$/;
const minuteText = (iso) => utc(iso, { seconds: false }).replace(/ UTC$/, "");

// The instant a start box holds (RFC 3339, UTC), or a problem naming the field.
function startInstant(text, field) {
  const m = text.trim().match(MINUTE);
  const iso = m && `${m[1]}T${m[2]}:00Z`;
  // Date.parse takes 2026-02-30 as March 2nd, 24:00 as the next day: it must read back the same.
  const read = m ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(read) || new Date(read).toISOString().slice(0, 16) !== iso.slice(0, 16)) {
    throw { field, message: "Write the start time as YYYY-MM-DD HH:MM, in UTC (e.g. 2026-01-12 02:30)." };
  }
  return iso;
}

// Text that follows the clock while its element is on the page.
function live(el, text) {
  const update = () => {
    el.textContent = text();
  };
  update();
  const timer = setInterval(() => (el.isConnected ? update() : clearInterval(timer)), 5000);
  return el;
}

const nowUtc = () => utc(new Date().toISOString(), { seconds: false });

// The days, hours and minutes of a custom recurrence, filled from `current`'s.
function intervalFields(prefix, current, hidden) {
  const num = (label, max, part) =>
    h("input", {
      type: "number",
      min: 0,
      max,
      step: 1,
      inputmode: "numeric",
      "aria-label": label,
      placeholder: "0",
      value: current?.recurrence === "custom" && current.interval[part] ? current.interval[part] : null,
    });
  const days = num("Days", 3650, "days");
  const hours = num("Hours", 23 * 100, "hours");
  const minutes = num("Minutes", 59 * 1000, "minutes");
  days.dataset.field = `${prefix}interval`;
  const el = h(
    "div",
    { class: "field interval", dataset: { fieldBox: `${prefix}interval` }, hidden },
    h("span", { class: "label", id: nextId("ivl") }, "Every"),
    h(
      "div",
      { class: "interval-row", role: "group" },
      h("label", {}, days, " days"),
      h("label", {}, hours, " hours"),
      h("label", {}, minutes, " minutes"),
    ),
    h("div", { class: "hint" }, "At least one minute in total."),
  );
  const value = () => ({ days: +days.value || 0, hours: +hours.value || 0, minutes: +minutes.value || 0 });
  return { el, value };
}

// The fields of one schedule, filled from `current` when editing one. `prefix` names them
// inside a larger form ("schedules.0.") so the api's errors land next to the right control.
// `value()` throws {field, message} for a start time it cannot read.
export function scheduleFields(prefix = "", current = null) {
  const recurrence = h(
    "select",
    {},
    RECURRENCES.map(([value, text]) => h("option", { value }, text)),
  );
  recurrence.value = current?.recurrence ?? "daily";
  const interval = intervalFields(prefix, current, recurrence.value !== "custom");
  const start = h("input", {
    type: "text",
    class: "mono",
    placeholder: "YYYY-MM-DD HH:MM",
    autocomplete: "off",
    spellcheck: "false",
    value: current?.start_at ? minuteText(current.start_at) : "",
  });
  const empty = current ? "Empty: no start time." : "Empty: the first run is right away.";
  const startHint = live(h("span", {}), () => `${empty} Now it is ${nowUtc()}.`);
  const journalised = h("input", { type: "checkbox", checked: current?.journalised ?? true });
  const enabled = h("input", { type: "checkbox", checked: current?.enabled ?? true });
  recurrence.addEventListener("change", () => {
    interval.el.hidden = recurrence.value !== "custom";
  });
  const check = (control, label, hint, name) =>
    h(
      "div",
      { class: "field check", dataset: { fieldBox: `${prefix}${name}` } },
      h("label", {}, control, " ", label),
      h("div", { class: "hint" }, hint),
    );
  const el = h(
    "div",
    { class: "schedule-fields" },
    field("Recurrence", recurrence, { name: `${prefix}recurrence` }),
    interval.el,
    field("Start time (UTC)", start, { name: `${prefix}start_at`, hint: startHint }),
    check(
      journalised,
      "Journalised",
      "Each run is planned from the previous one, even across restarts; after downtime it runs once, not once per missed run.",
      "journalised",
    ),
    check(enabled, "Enabled", "A disabled schedule is kept but does not run.", "enabled"),
  );
  const value = () => {
    const body = { recurrence: recurrence.value, journalised: journalised.checked, enabled: enabled.checked };
    if (recurrence.value === "custom") body.interval = interval.value();
    // The field's name as it is now (a task form renumbers its schedules).
    if (start.value.trim()) body.start_at = startInstant(start.value, start.dataset.field);
    else if (current) body.start_at = null;
    return body;
  };
  return { el, value };
}

// A form of one schedule: `send(body)` saves it; `onDone` after, `onCancel` on Cancel.
function scheduleForm({ title, current = null, submitText, send, onDone, onCancel }) {
  const fields = scheduleFields("", current);
  const submit = h("button", { type: "submit", class: "primary", dataset: { needs: "admin" } }, submitText);
  const cancel = h("button", { type: "button", class: "ghost", onclick: onCancel }, "Cancel");
  const form = h(
    "form",
    { class: "card form attach", "aria-label": title, novalidate: true },
    h("h3", {}, title),
    h("div", { class: "form-error" }),
    fields.el,
    h("div", { class: "actions" }, cancel, submit),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        await send(fields.value());
        onDone();
      } catch (err) {
        showError(form, err.unavailable ? { message: unavailableText(title) } : err);
      }
    });
  });
  return form;
}

// The standalone attach-schedule form of a task; Cancel closes it (`onCancel`, else `onDone`).
export function attachForm(taskId, onDone, onCancel = onDone) {
  return scheduleForm({
    title: "Attach a schedule",
    submitText: "Attach schedule",
    send: (body) => post(`/tasks/${taskId}/schedules`, body),
    onDone,
    onCancel,
  });
}

export function scheduleTable(schedules, cat, { showTask = false, onChange }) {
  if (!schedules.length) return h("p", { class: "empty" }, "No schedules.");
  // The ones that run first, soonest first; paused ones after.
  const sorted = [...schedules].sort(
    (a, b) => b.enabled - a.enabled || (a.next_run_at || "~").localeCompare(b.next_run_at || "~"),
  );
  const columns = [showTask ? "Task" : null, "Schedule", "Next run", "Last run", "Enabled", ""].filter(
    (c) => c !== null,
  );
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "schedules" },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        sorted.map((s) => scheduleRow(s, cat, { showTask, onChange, columns: columns.length })),
      ),
    ),
  );
}

// The schedules whose form is open: id → {editor: the form's row, row: the schedule's
// row}. Tables are rebuilt when schedules change (live pages); an open form stays.
const editing = new Map();

// A schedule's row, or its form while it is edited (Edit opens it in place).
function scheduleRow(s, cat, options) {
  const row = scheduleFacts(s, cat, options);
  const open = editing.get(s.id);
  // A form no longer on the page was left with its page.
  if (!open?.editor.isConnected) {
    editing.delete(s.id);
    return row;
  }
  open.row = row;
  return open.editor;
}

function editForm(s, { onChange, columns }) {
  const close = () => {
    const open = editing.get(s.id);
    editing.delete(s.id);
    open?.editor.replaceWith(open.row);
  };
  const form = scheduleForm({
    title: `Edit the schedule ${s.description}`,
    current: s,
    submitText: "Save schedule",
    send: (body) => patch(`/schedules/${s.id}`, body),
    onDone: () => {
      editing.delete(s.id);
      onChange();
    },
    onCancel: close,
  });
  return h("tr", { class: "editing" }, h("td", { colspan: columns }, form));
}

function scheduleFacts(s, cat, { showTask, onChange, columns }) {
  const problem = h("div", { class: "row-error", role: "alert" });
  const toggle = h("input", {
    type: "checkbox",
    class: "switch",
    checked: s.enabled,
    "aria-label": `Schedule ${s.description} enabled`,
    disabled: !may("operator"),
  });
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    try {
      await patch(`/schedules/${s.id}`, { enabled: toggle.checked });
      onChange();
    } catch (e) {
      toggle.checked = !toggle.checked;
      replace(problem, e.message);
    } finally {
      toggle.disabled = !may("operator");
    }
  });
  const remove = h("button", { type: "button", class: "ghost small danger-text", dataset: { needs: "admin" } }, "Delete");
  remove.addEventListener("click", () => {
    if (!confirm(`Delete the schedule "${s.description}"? Past jobs stay in the history.`)) return;
    busy(remove, async () => {
      try {
        await del(`/schedules/${s.id}`);
        onChange();
      } catch (e) {
        replace(problem, e.message);
      }
    });
  });
  const edit = h(
    "button",
    { type: "button", class: "ghost small", "aria-label": `Edit the schedule ${s.description}`, dataset: { needs: "admin" } },
    "Edit",
  );
  const row = h(
    "tr",
    { class: s.enabled ? "" : "disabled" },
    showTask ? h("td", {}, h("a", { href: `#/scheduling/tasks/${s.task_id}` }, cat.taskTitle(s.task_id))) : null,
    h(
      "td",
      {},
      s.description,
      h(
        "div",
        { class: "muted small" },
        s.start_at ? `from ${utc(s.start_at, { seconds: false })}` : "started at once",
        s.journalised ? " · journalised" : " · not journalised",
      ),
    ),
    h(
      "td",
      { class: "nowrap" },
      s.enabled && s.next_run_at
        ? [
            when(s.next_run_at, { seconds: false }),
            h("div", { class: "muted small" }, utc(s.next_run_at, { seconds: false })),
          ]
        : h("span", { class: "muted" }, "paused"),
    ),
    h("td", { class: "nowrap" }, when(s.last_run_at)),
    h("td", {}, toggle),
    h("td", { class: "nowrap" }, edit, " ", remove, problem),
  );
  edit.addEventListener("click", () => {
    const editor = editForm(s, { onChange, columns });
    editing.set(s.id, { editor, row });
    row.replaceWith(editor);
    editor.querySelector("select").focus();
  });
  return row;
}

export const schedulesUnavailable = () => notice("info", unavailableText("Schedules"));
