// Job History: every job, filtered by status, task, connector and the days it was queued
// (UTC). The filters are the page's URL, so a reload or a shared link keeps them.

import { get, query } from "./api.js";
import { append, field, h, notice, replace } from "./dom.js";
import { jobList } from "./jobs.js";
import { rules } from "./rules.js";

const ROUTE = "#/scheduling/history";
const NONE = { status: "", task_id: "", connector_id: "", from: "", to: "" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isDay = (v) => /^\d{4}-\d\d-\d\d$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));

export const historyHref = (filters) => `${ROUTE}${query(filters)}`;

// The filters of a URL, those that mean something (the others are left out).
function readFilters(q, states) {
  const keep = (key, ok) => (ok(q.get(key) ?? "") ? q.get(key) : "");
  return {
    status: keep("status", (v) => states.some((s) => s.status === v)),
    task_id: keep("task_id", (v) => UUID.test(v)),
    connector_id: keep("connector_id", (v) => UUID.test(v)),
    from: keep("from", isDay),
    to: keep("to", isDay),
  };
}

// The days from `from` to `to`, both included, as the api's instants: `since` included,
// `until` (the next midnight UTC) excluded.
function period({ from, to }) {
  const nextDay = (day) => new Date(Date.parse(`${day}T00:00:00Z`) + 86400e3).toISOString();
  return { since: from ? `${from}T00:00:00Z` : null, until: to ? nextDay(to) : null };
}

const filtered = (f) => Object.values(f).some(Boolean);

// A select of `items` ([value, text]) with "All …" first; a value it does not list (a
// deleted task) stays selected under `missing`.
function choice(all, items, value, missing) {
  const select = h(
    "select",
    {},
    h("option", { value: "" }, all),
    items.map(([v, text]) => h("option", { value: v }, text)),
  );
  if (value && !items.some(([v]) => v === value)) select.append(h("option", { value }, missing));
  select.value = value;
  return select;
}

// The status chips (links, so that each filter can be opened in a new tab) and the
// controls of the other filters; `apply(change)` shows the jobs they keep.
function filterBar(f, states, cat, apply) {
  const chips = h("nav", { class: "filters", "aria-label": "Filter by status" });
  const tasks = [...cat.tasks.values()].map((t) => [t.id, cat.taskTitle(t)]);
  const connectors = [...cat.connectors.values()].map((c) => [c.id, `${c.name} (${c.role})`]);
  const byText = (a, b) => a[1].localeCompare(b[1]);
  const controls = {
    task_id: choice("All tasks", tasks.sort(byText), f.task_id, "deleted task"),
    connector_id: choice("All connectors", connectors.sort(byText), f.connector_id, "deleted connector"),
    from: h("input", { type: "date", value: f.from }),
    to: h("input", { type: "date", value: f.to }),
  };
  for (const [key, control] of Object.entries(controls)) {
    control.addEventListener("change", () => apply({ [key]: control.value }));
  }
  const clear = h("button", { type: "button", class: "ghost small" }, "Clear filters");
  clear.addEventListener("click", () => apply(NONE));
  const show = (cur) => {
    replace(
      chips,
      [{ status: "", label: "All" }, ...states].map(({ status: s, label }) => {
        const chip = h(
          "a",
          {
            href: historyHref({ ...cur, status: s }),
            class: `chip${s ? ` s-${s}` : ""}${s === cur.status ? " active" : ""}`,
            "aria-current": s === cur.status ? "true" : null,
          },
          label,
        );
        chip.addEventListener("click", (e) => {
          if (e.button || e.ctrlKey || e.metaKey || e.shiftKey) return; // a new tab or window
          e.preventDefault();
          apply({ status: s });
        });
        return chip;
      }),
    );
    for (const [key, control] of Object.entries(controls)) control.value = cur[key];
    clear.hidden = !filtered(cur);
  };
  show(f);
  const el = h(
    "div",
    { class: "history-filters" },
    chips,
    h(
      "div",
      { class: "filter-row", role: "group", "aria-label": "Filter jobs" },
      field("Task", controls.task_id),
      field("Connector", controls.connector_id),
      field("From (UTC)", controls.from),
      field("To (UTC)", controls.to),
      clear,
    ),
  );
  return { el, show };
}

export async function historyView(root, { query: q, cat, onLeave, restate, flashId }) {
  const states = (await rules()).job_states;
  let f = readFilters(q, states);
  const slot = h("div");
  let stops = []; // those of the list shown
  onLeave(() => stops.forEach((stop) => stop()));

  const showList = (flash) => {
    for (const stop of stops) stop();
    stops = [];
    if (f.from && f.to && f.to < f.from) {
      replace(slot, notice("error", "The “To” day is before the “From” day."));
      return;
    }
    const keep = { status: f.status, task_id: f.task_id, connector_id: f.connector_id, ...period(f) };
    const empty = filtered(f)
      ? "No jobs match these filters."
      : "No jobs yet. Save a task to run it once, or attach a schedule.";
    replace(
      slot,
      jobList({
        load: (limit, cursor) => get(`/jobs${query({ ...keep, limit, cursor })}`),
        cat,
        empty,
        flashId: flash,
        onLeave: (fn) => stops.push(fn),
      }),
    );
  };
  const bar = filterBar(f, states, cat, (change) => {
    f = { ...f, ...change };
    // The URL says what is shown; the filters are not steps to go Back through.
    restate(historyHref(f));
    bar.show(f);
    showList(null);
  });
  append(root, bar.el, slot);
  showList(flashId);
}
