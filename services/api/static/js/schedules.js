// Schedules: the attach-schedule fields, and schedule tables.

import { del, patch, post, unavailableText } from "./api.js";
import { busy, clearErrors, field, h, nextId, notice, replace, showError, utc, when } from "./dom.js";

export const RECURRENCES = [
  ["twice_daily", "Twice daily", "Twice daily (every 12 h)"],
  ["daily", "Daily", "Daily (every 24 h)"],
  ["weekly", "Weekly", "Weekly (every 7 days)"],
  ["every_30_days", "Every 30 days", "Every 30 days"],
  ["custom", "Custom", "Custom: days, hours, minutes"],
];

export function recurrenceText(s) {
  if (s.recurrence !== "custom") return RECURRENCES.find(([k]) => k === s.recurrence)?.[1] ?? s.recurrence;
  const i = s.interval || {};
  const parts = [
    [i.days, "d"],
    [i.hours, "h"],
    [i.minutes, "min"],
  ]
    .filter(([n]) => n)
    .map(([n, u]) => `${n} ${u}`);
  return `Every ${parts.join(" ") || "?"}`;
}

const nowUtc = () => utc(new Date().toISOString(), { seconds: false });

// The fields of one schedule. `prefix` names them inside a larger form
// ("schedules.0.") so the api's errors land next to the right control.
export function scheduleFields(prefix = "") {
  const recurrence = h(
    "select",
    {},
    RECURRENCES.map(([value, , text]) => h("option", { value }, text)),
  );
  recurrence.value = "daily";
  const num = (label, max) =>
    h("input", { type: "number", min: 0, max, step: 1, inputmode: "numeric", "aria-label": label, placeholder: "0" });
  const days = num("Days", 3650);
  const hours = num("Hours", 23 * 100);
  const minutes = num("Minutes", 59 * 1000);
  const interval = h(
    "div",
    { class: "field interval", dataset: { fieldBox: `${prefix}interval` }, hidden: true },
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
  days.dataset.field = `${prefix}interval`;
  const start = h("input", { type: "datetime-local", step: 60 });
  const startHint = h("span", {}, `Empty: the first run is right away. Now it is ${nowUtc()}.`);
  const journalised = h("input", { type: "checkbox", checked: true });
  const enabled = h("input", { type: "checkbox", checked: true });
  recurrence.addEventListener("change", () => {
    interval.hidden = recurrence.value !== "custom";
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
    interval,
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
    if (recurrence.value === "custom") {
      body.interval = { days: +days.value || 0, hours: +hours.value || 0, minutes: +minutes.value || 0 };
    }
    // datetime-local has no zone: the form says UTC, so it is sent as UTC.
    if (start.value) body.start_at = `${start.value.length === 16 ? `${start.value}:00` : start.value}Z`;
    return body;
  };
  return { el, value };
}

// The standalone attach-schedule form of a task.
export function attachForm(taskId, onDone) {
  const fields = scheduleFields();
  const submit = h("button", { type: "submit", class: "primary" }, "Attach schedule");
  const form = h(
    "form",
    { class: "card form attach", "aria-label": "Attach a schedule" },
    h("h3", {}, "Attach a schedule"),
    h("div", { class: "form-error" }),
    fields.el,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        await post(`/tasks/${taskId}/schedules`, fields.value());
        onDone();
      } catch (err) {
        showError(form, err.unavailable ? { message: unavailableText("Attaching a schedule") } : err);
      }
    });
  });
  return form;
}

export function scheduleTable(schedules, cat, { showTask = false, onChange }) {
  if (!schedules.length) return h("p", { class: "empty" }, "No schedules.");
  const sorted = [...schedules].sort((a, b) => (a.next_run_at || "~").localeCompare(b.next_run_at || "~"));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "schedules" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [showTask ? "Task" : null, "Schedule", "Next run", "Last run", "Enabled", ""]
            .filter((c) => c !== null)
            .map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        sorted.map((s) => scheduleRow(s, cat, showTask, onChange)),
      ),
    ),
  );
}

function scheduleRow(s, cat, showTask, onChange) {
  const problem = h("div", { class: "row-error", role: "alert" });
  const toggle = h("input", {
    type: "checkbox",
    class: "switch",
    checked: s.enabled,
    "aria-label": `Schedule ${recurrenceText(s)} enabled`,
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
      toggle.disabled = false;
    }
  });
  const remove = h("button", { type: "button", class: "ghost small danger-text" }, "Delete");
  remove.addEventListener("click", () => {
    if (!confirm(`Delete the schedule "${recurrenceText(s)}"? Past jobs stay in the history.`)) return;
    busy(remove, async () => {
      try {
        await del(`/schedules/${s.id}`);
        onChange();
      } catch (e) {
        replace(problem, e.message);
      }
    });
  });
  return h(
    "tr",
    { class: s.enabled ? "" : "disabled" },
    showTask ? h("td", {}, h("a", { href: `#/scheduling/tasks/${s.task_id}` }, cat.taskTitle(s.task_id))) : null,
    h(
      "td",
      {},
      recurrenceText(s),
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
    h("td", {}, remove, problem),
  );
}

export const schedulesUnavailable = () => notice("info", unavailableText("Schedules"));
