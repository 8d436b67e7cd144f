// Operations › Scheduling: tasks, the task form, a task's page.

import { del, get, patch, post, query } from "./api.js";
import { capitalize } from "./catalog.js";
import {
  append,
  badge,
  busy,
  clearErrors,
  field,
  h,
  notice,
  plural,
  replace,
  shortId,
  showError,
  tabs,
  when,
} from "./dom.js";
import { freshnessField, staleBadge, staleNotice } from "./freshness.js";
import { runOnField } from "./groups.js";
import { historyView } from "./history.js";
import { jobList, openJob } from "./jobs.js";
import { behind, liveRefresh } from "./live.js";
import { pruneOptions } from "./prune.js";
import { restoreOptions } from "./restore.js";
import { rules, taskKind } from "./rules.js";
import { attachForm, scheduleFields, scheduleTable, schedulesUnavailable } from "./schedules.js";

function header(current) {
  return [
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: -1 }, "Scheduling"),
      h("a", { href: "#/scheduling/tasks/new", class: "button primary", dataset: { needs: "admin" } }, "New task"),
    ),
    tabs(
      [
        ["tasks", "Tasks", "#/scheduling"],
        ["history", "Job History", "#/scheduling/history"],
      ],
      current,
    ),
  ];
}

export async function schedulingView(root, ctx) {
  const tab = ctx.params[0] === "history" ? "history" : "tasks";
  append(root, header(tab));
  if (tab === "history") {
    const created = ctx.query.get("created");
    if (created) {
      append(
        root,
        notice(
          "ok",
          "Task saved; it runs once now. ",
          h(
            "button",
            { type: "button", class: "link", onclick: () => openJob(created, ctx.cat) },
            `Open job ${shortId(created)}`,
          ),
        ),
      );
    }
    await historyView(root, { ...ctx, flashId: created });
    return;
  }
  const body = h("div", {}, h("p", { class: "muted" }, "Loading tasks…"));
  append(root, body);
  const table = taskTable(ctx.cat);
  // The tasks' facts, read again after each burst of job and schedule events; a read
  // that fails keeps the facts shown (null schedules: the api cannot list them).
  let schedules = null;
  let jobs = [];
  const load = async (events = []) => {
    const [s, j] = await Promise.all([
      get("/schedules").catch(() => undefined),
      get(`/jobs${query({ limit: 200 })}`).catch(() => undefined),
    ]);
    schedules = s ?? schedules;
    jobs = j?.items ?? jobs;
    await ctx.cat.know(jobs);
    table.update(schedules, jobs);
    const byId = new Map(jobs.map((job) => [job.id, job]));
    return behind(events, (id) => byId.get(id), () => true);
  };
  await load();
  replace(body, table.el);
  liveRefresh({ refresh: load, onLeave: ctx.onLeave });
}

function noTasks() {
  return h(
    "div",
    { class: "empty-state" },
    h("p", {}, "No tasks yet."),
    h(
      "p",
      { class: "muted" },
      "A task backs up, restores, syncs or checks; saved without a schedule it runs once at once.",
    ),
    h("a", { href: "#/scheduling/tasks/new", class: "button primary" }, "Create a task"),
  );
}

// `own`: the task's schedules, or null when the api could not list them.
function schedulesCell(own) {
  if (own === null) return h("span", { class: "muted" }, "—");
  if (!own.length) return h("span", { class: "muted" }, "on demand");
  const next = own
    .filter((s) => s.enabled && s.next_run_at)
    .map((s) => s.next_run_at)
    .sort()[0];
  return [
    `${own.length} `,
    next
      ? h("span", { class: "muted" }, "· next ", when(next, { seconds: false }))
      : h("span", { class: "muted" }, "· paused"),
  ];
}

const lastJobCell = (job) =>
  job ? [badge(job.status), " ", when(job.queued_at)] : h("span", { class: "muted" }, "never ran");

// `cells`: where taskTable puts the task's facts (its schedules, its last job).
function taskRow(t, cat, cells) {
  const run = h("button", { type: "button", class: "small", dataset: { needs: "operator" } }, "Run now");
  run.addEventListener("click", () => busy(run, () => runNow(t.id, cat, run)));
  return h(
    "tr",
    {},
    h(
      "td",
      {},
      h("a", { href: `#/scheduling/tasks/${t.id}` }, cat.taskLabel(t.id)),
      " ",
      staleBadge(t),
      t.name ? h("div", { class: "muted small" }, cat.route(t)) : null,
    ),
    h("td", {}, h("span", { class: "type" }, t.type)),
    h("td", {}, labelList(t.labels)),
    cells.schedules,
    cells.job,
    h("td", { class: "actions-cell" }, run),
  );
}

// The tasks; `update(schedules, jobs)` puts their latest facts in place. Rows are kept
// (but when the tasks change), so a refresh moves neither focus nor a row's message.
function taskTable(cat) {
  const el = h("div");
  const cells = new Map(); // task id → {schedules, job}: the cells of its facts
  let shownIds = null;
  const update = (schedules, jobs) => {
    const tasks = [...cat.tasks.values()];
    const ids = tasks.map((t) => t.id).join();
    if (ids !== shownIds) {
      shownIds = ids;
      cells.clear();
      for (const t of tasks) cells.set(t.id, { schedules: h("td"), job: h("td") });
      replace(el, tasks.length ? tasksTable(tasks, cat, cells) : noTasks());
    }
    const lastJob = new Map();
    for (const j of jobs) if (!lastJob.has(j.task_id)) lastJob.set(j.task_id, j);
    for (const [id, cell] of cells) {
      replace(cell.schedules, schedulesCell(schedules === null ? null : schedules.filter((s) => s.task_id === id)));
      replace(cell.job, lastJobCell(lastJob.get(id)));
    }
  };
  return { el, update };
}

function tasksTable(tasks, cat, cells) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "tasks" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Task", "Type", "Labels", "Schedules", "Last job", ""].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        tasks.map((t) => taskRow(t, cat, cells.get(t.id))),
      ),
    ),
  );
}

const labelList = (labels) =>
  labels.length ? labels.map((l) => h("span", { class: "tag" }, l)) : h("span", { class: "muted" }, "—");

async function runNow(taskId, cat, button) {
  try {
    const { job_id: jobId } = await post(`/tasks/${taskId}/run`);
    openJob(jobId, cat);
  } catch (e) {
    button.after(h("span", { class: "row-error", role: "alert" }, e.message));
  }
}

// The task form, in parts: the type chooser, the connector pickers, the restore's
// options (restore.js), the advanced options, the schedules editor, the body it sends.

// One card per task type of the api's rules; a task's type cannot change.
function typeChooser(kinds, type, editing) {
  return h(
    "fieldset",
    { class: "field types", dataset: { fieldBox: "type" }, hidden: editing },
    h("legend", {}, "Type"),
    kinds.map((k) =>
      h(
        "label",
        { class: "type-card" },
        h("input", {
          type: "radio",
          name: "type",
          value: k.type,
          checked: k.type === type,
          disabled: editing && k.type !== type,
        }),
        h("span", { class: "type-name" }, capitalize(k.type)),
        h("span", { class: "type-text" }, k.description),
      ),
    ),
  );
}

function nameAndLabels(task) {
  const name = h("input", {
    type: "text",
    maxlength: 128,
    placeholder: "optional, e.g. nightly web-01",
    value: task?.name ?? "",
  });
  const labels = h("input", {
    type: "text",
    placeholder: "e.g. nightly web",
    value: (task?.labels ?? []).join(" "),
    autocomplete: "off",
  });
  const el = h(
    "div",
    { class: "stack" },
    field("Name", name, { name: "name" }),
    field("Labels", labels, { name: "labels", hint: " " }),
  );
  return { el, name, labels, hint: el.querySelector(".hint") };
}

// What the labels do depends on the type.
const LABELS_HINT = {
  backup: "Set as tags on the new snapshot. Separate with spaces.",
  restore: "Without a chosen snapshot, the latest one carrying all these labels is restored. Separate with spaces.",
  sync: "Only snapshots carrying all these labels are copied. Separate with spaces.",
  check: "Only snapshots carrying all these labels are checked. Separate with spaces.",
  prune: "Only snapshots carrying all these labels are considered; the others are left alone. Separate with spaces.",
};

// One select per connector the type takes (its slots in the rules), of the slot's role.
function connectorPickers(cat, kind, initial) {
  const selects = {};
  const fields = kind.slots.map(({ field: slot, role, label }) => {
    const choices = cat.byRole(role);
    const select = h(
      "select",
      { required: true },
      h("option", { value: "" }, `Choose a ${role}…`),
      choices.map((c) => h("option", { value: c.id }, `${c.name} — ${c.location}`)),
    );
    const wanted = initial(slot);
    if (choices.some((c) => c.id === wanted)) select.value = wanted;
    selects[slot] = select;
    const none = h(
      "span",
      {},
      `No ${role} connector yet. `,
      h("a", { href: `#/connectors/new?role=${role}` }, `Create a ${role}`),
    );
    return field(label, select, { name: slot, hint: choices.length ? null : none });
  });
  return { fields, selects };
}

// What the live runners announce they give a job that sets no concurrency, by task type:
// their presence in GET /health (which answers 503 with the same body while degraded).
async function runnerConcurrency() {
  const health = await get("/health").catch((e) => e.body);
  return (type) => {
    const values = (health?.runners ?? []).map((r) => r.concurrency?.[type]).filter(Boolean);
    return [...new Set(values)].sort((a, b) => a - b);
  };
}

function concurrencyHint(type, announced, recommended) {
  const [low, high] = [announced[0], announced[announced.length - 1]];
  const runner = !announced.length
    ? "the runner sets a recommended value for its host"
    : low === high
      ? `the runner sets ${low} for a ${type} (recommended for its host)`
      : `each runner sets the value recommended for its host: ${low} to ${high} for a ${type}`;
  const last = recommended ? ` The last run used ${recommended}.` : " Only change it for a reason.";
  return `How many operations plakar runs in parallel (-concurrency). Empty: ${runner}.${last}`;
}

// Concurrency, and the window of sync and check. `recommended`: what the task's last run used.
function advancedOptions(task, recommended) {
  const concurrency = h("input", {
    type: "number",
    min: 1,
    max: 1024,
    step: 1,
    inputmode: "numeric",
    placeholder: "recommended by the runner",
    value: task?.concurrency ?? "",
  });
  const window = h("input", {
    type: "text",
    placeholder: "e.g. 7d, 12h, 1d12h — empty: all snapshots",
    value: task?.window ?? "",
  });
  const windowBox = field("Window", window, {
    name: "window",
    hint: "Only snapshots created within this duration before the job runs.",
  });
  const attempts = h("input", {
    type: "number",
    min: 1,
    max: 10,
    step: 1,
    inputmode: "numeric",
    placeholder: "never",
    value: task?.retry?.attempts ?? "",
  });
  const delay = h("input", { type: "text", placeholder: "e.g. 5m, 1h", value: task?.retry?.delay ?? "5m" });
  const el = h(
    "details",
    { class: "advanced", open: Boolean(task?.concurrency || task?.window || task?.retry) },
    h("summary", {}, "Advanced options"),
    field("Concurrency", concurrency, { name: "concurrency", hint: " " }),
    windowBox,
    field("Retries", attempts, {
      name: "retry.attempts",
      hint: "How many times a failed run is tried again, unless a later run of the task came first (1 to 10). Cancelled and skipped runs never are. Empty: never.",
    }),
    field("Retry after", delay, {
      name: "retry.delay",
      hint: "How long after a failure its retry runs: 1m to 1d.",
    }),
  );
  const retry = () =>
    attempts.value === "" ? null : { attempts: Number(attempts.value), delay: delay.value.trim() };
  const concurrencyHintEl = concurrency.parentElement.querySelector(".hint");
  const announced = runnerConcurrency();
  let shownType = null;
  const showFor = (type) => {
    shownType = type;
    concurrencyHintEl.textContent = concurrencyHint(type, [], recommended);
    announced.then((of) => {
      if (shownType === type) concurrencyHintEl.textContent = concurrencyHint(type, of(type), recommended);
    });
    windowBox.hidden = !(type === "sync" || type === "check");
    const verb = { sync: "copied", check: "checked" }[type];
    if (verb)
      windowBox.querySelector(".hint").textContent =
        `Only snapshots created within this duration before the job runs are ${verb}. Empty: all.`;
  };
  return { el, concurrency, window, retry, showFor };
}

// What a backup leaves out: one gitignore pattern a line (the api checks each).
function backupOptions(task) {
  const excludes = h("textarea", {
    rows: 3,
    spellcheck: false,
    autocapitalize: "off",
    placeholder: "*.tmp\nnode_modules/\n/home/*/Downloads",
  });
  excludes.value = (task?.excludes ?? []).join("\n");
  const el = field("Exclude", excludes, {
    name: "excludes",
    wide: true,
    hint:
      "Files and folders the backup leaves out: one gitignore pattern a line, matched against their full path " +
      "on the source's host. Without a / inside, a pattern matches a name anywhere; ending in /, folders only; " +
      "starting with !, it takes back what a pattern above left out.",
  });
  const body = () => ({
    excludes: excludes.value
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean),
  });
  return { el, body };
}

// The schedules a new task is saved with (in the same POST /tasks). `onCount` hears
// how many there are.
function schedulesEditor(onCount) {
  const entries = [];
  const list = h("div", { class: "schedule-list" });
  const renumber = () => {
    entries.forEach((s, i) => {
      s.box.querySelector("legend").textContent = `Schedule ${i + 1}`;
      for (const el of s.box.querySelectorAll("[data-field-box],[data-field]")) {
        for (const key of ["fieldBox", "field"]) {
          if (el.dataset[key]) el.dataset[key] = el.dataset[key].replace(/^schedules\.\d+\./, `schedules.${i}.`);
        }
      }
    });
    onCount(entries.length);
  };
  const add = () => {
    const fields = scheduleFields(`schedules.${entries.length}.`);
    const remove = h("button", { type: "button", class: "ghost small" }, "Remove");
    const box = h(
      "fieldset",
      { class: "schedule card" },
      h("legend", {}),
      fields.el,
      h("div", { class: "actions" }, remove),
    );
    const entry = { value: fields.value, box };
    remove.addEventListener("click", () => {
      entries.splice(entries.indexOf(entry), 1);
      entry.box.remove();
      renumber();
    });
    entries.push(entry);
    list.append(entry.box);
    renumber();
    entry.box.querySelector("select").focus();
  };
  const el = h(
    "section",
    { class: "schedules-section", dataset: { fieldBox: "schedules" } },
    h("h3", {}, "Schedules"),
    h(
      "p",
      { class: "hint" },
      "Save without a schedule to run the task once, right away. Attach schedules to run it again and again.",
    ),
    list,
    h("button", { type: "button", class: "ghost", onclick: add }, "+ Attach a schedule"),
  );
  return { el, values: () => entries.map((s) => s.value()) };
}

const RUN_ON_HINT =
  "The runners that run its jobs (plakar-cp runner --group NAME). A connector that names a group brings the task there.";

const submitText = (editing, schedules) =>
  editing ? "Save changes" : schedules ? `Save with ${plural(schedules, "schedule")}` : "Save and run once";

// The body of POST /tasks (new) or PATCH /tasks/{id}: the fields the type takes.
function taskBody({ editing, kind, own, advanced, selects, backup, restore, prune, schedules, runOn, freshness }) {
  const type = kind.type;
  const out = {
    name: own.name.value.trim() || null,
    labels: own.labels.value.split(/[\s,]+/).filter(Boolean),
    concurrency: advanced.concurrency.value === "" ? null : Number(advanced.concurrency.value),
    retry: advanced.retry(),
    freshness: freshness.value(),
    runner_group: runOn.value(),
  };
  if (!editing) out.type = type;
  for (const { field: slot } of kind.slots) out[slot] = selects[slot].value || null;
  if (type === "restore") Object.assign(out, restore.body());
  if (type === "backup") Object.assign(out, backup.body());
  if (type === "prune") Object.assign(out, prune.body());
  if (type === "sync" || type === "check") out.window = advanced.window.value.trim() || null;
  const attached = schedules ? schedules.values() : [];
  if (attached.length) out.schedules = attached;
  return out;
}

// The task form: type → connectors → labels → options → (new tasks) schedules.
// `r`: the api's rules, for the task types and the connectors each takes.
function taskForm({ cat, r, task = null, preset = new URLSearchParams(), recommended = null, onSaved }) {
  const editing = Boolean(task);
  const wanted = task?.type || preset.get("type");
  let kind = taskKind(r, wanted) ?? taskKind(r, "backup");
  const initial = (slot) => task?.[slot] ?? preset.get(slot) ?? preset.get("connector");
  const parts = {
    editing,
    own: nameAndLabels(task),
    advanced: advancedOptions(task, recommended),
    backup: backupOptions(task),
    restore: restoreOptions(task, preset),
    prune: pruneOptions(r, task),
    selects: {},
    runOn: runOnField(task?.runner_group, RUN_ON_HINT),
    freshness: freshnessField(
      task?.freshness,
      "It turns stale (red, and a freshness.lost event) when no run of it succeeded within this, whether or not any ran.",
    ),
  };
  const typeField = typeChooser(r.tasks, kind.type, editing);
  const pickers = h("div", { class: "pickers" });
  const options = h("div", { class: "type-options" });
  const submit = h("button", { type: "submit", class: "primary", dataset: { needs: "admin" } }, submitText(editing, 0));
  parts.schedules = editing ? null : schedulesEditor((n) => (submit.textContent = submitText(editing, n)));
  const form = h(
    "form",
    { class: "form task-form", novalidate: true, "aria-label": editing ? "Task configuration" : "New task" },
    h("div", { class: "form-error" }),
    typeField,
    h("div", { class: "grid2" }, pickers, parts.own.el),
    options,
    h("div", { class: "grid2" }, parts.runOn.el, parts.freshness.el),
    parts.advanced.el,
    parts.schedules?.el,
    h("div", { class: "actions" }, submit),
  );

  const showType = () => {
    const { fields, selects } = connectorPickers(cat, kind, initial);
    parts.selects = selects;
    replace(pickers, fields);
    replace(parts.own.hint, LABELS_HINT[kind.type]);
    replace(options);
    if (kind.type === "backup") append(options, parts.backup.el);
    if (kind.type === "restore") {
      append(options, parts.restore.el);
      selects.store_id.addEventListener("change", () => parts.restore.load(selects.store_id.value));
      parts.restore.load(selects.store_id.value);
    }
    if (kind.type === "prune") {
      append(options, parts.prune.el);
      parts.prune.stale();
      selects.store_id.addEventListener("change", parts.prune.stale);
      parts.own.labels.addEventListener("input", parts.prune.stale);
    }
    parts.advanced.showFor(kind.type);
  };
  // A preview asks about the task as the form would create it (no schedules: not a task field).
  parts.prune.previewWith(() => {
    const { schedules, ...body } = taskBody({ ...parts, kind, editing: false });
    return body;
  });
  typeField.addEventListener("change", (e) => {
    kind = taskKind(r, e.target.value);
    clearErrors(form);
    showType();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        const body = taskBody({ ...parts, kind });
        onSaved(editing ? await patch(`/tasks/${task.id}`, body) : await post("/tasks", body));
      } catch (err) {
        showError(form, err);
      }
    });
  });
  showType();
  return form;
}

export async function newTaskView(root, ctx) {
  const r = await rules();
  append(
    root,
    h("div", { class: "crumbs" }, h("a", { href: "#/scheduling" }, "Scheduling"), " › New task"),
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "New task")),
    h(
      "div",
      { class: "card" },
      taskForm({
        cat: ctx.cat,
        r,
        preset: ctx.query,
        onSaved: (answer) => {
          ctx.go(
            answer.job_id ? `#/scheduling/history?created=${answer.job_id}` : `#/scheduling/tasks/${answer.task.id}`,
          );
        },
      }),
    ),
  );
}

// A task's schedules, with the form that attaches one more.
function taskSchedules(id, cat) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading schedules…"));
  const attachSlot = h("div");
  const attachButton = h("button", { type: "button", class: "ghost", dataset: { needs: "admin" } }, "+ Attach a schedule");
  const load = async () => {
    try {
      const items = await get(`/schedules${query({ task_id: id })}`);
      replace(list, scheduleTable(items, cat, { onChange: load }));
    } catch (e) {
      replace(list, e.unavailable ? schedulesUnavailable() : notice("error", e.message));
      attachButton.hidden = e.unavailable;
    }
  };
  attachButton.addEventListener("click", () => {
    attachButton.hidden = true;
    replace(
      attachSlot,
      attachForm(id, () => {
        replace(attachSlot);
        attachButton.hidden = false;
        load();
      }),
    );
    attachSlot.querySelector("select").focus();
  });
  const el = h("section", { class: "card" }, h("h2", {}, "Schedules"), list, attachButton, attachSlot);
  return { el, load };
}

// Run now and Delete, for the head of a task's page; `message` shows what went wrong.
function taskActions(task, ctx, message) {
  const cat = ctx.cat;
  const run = h("button", { type: "button", class: "primary", dataset: { needs: "operator" } }, "Run now");
  run.addEventListener("click", () => busy(run, () => runNow(task.id, cat, run)));
  const remove = h("button", { type: "button", class: "danger", dataset: { needs: "admin" } }, "Delete task");
  remove.addEventListener("click", () => {
    if (!confirm(`Delete the task "${cat.taskTitle(task)}" and its schedules? Its jobs stay in the history.`)) return;
    busy(remove, async () => {
      try {
        await del(`/tasks/${task.id}`);
        ctx.go("#/scheduling");
      } catch (e) {
        replace(message, notice("error", e.message));
      }
    });
  });
  return [run, remove];
}

export async function taskView(root, ctx) {
  const id = ctx.params[0];
  let task;
  try {
    task = await get(`/tasks/${id}`);
  } catch (e) {
    append(root, notice("error", e.message), h("a", { href: "#/scheduling" }, "Back to the tasks"));
    return;
  }
  const r = await rules();
  const cat = ctx.cat;
  const last = await get(`/jobs${query({ task_id: id, limit: 1 })}`).catch(() => ({ items: [] }));
  const message = h("div");
  const title = h("h1", { tabindex: -1 }, cat.taskTitle(task));
  const schedules = taskSchedules(id, cat);
  const jobs = jobList({
    toolbar: h("h2", {}, "Jobs"),
    load: (limit, cursor) => get(`/jobs${query({ task_id: id, limit, cursor })}`),
    cat,
    empty: "This task has not run yet.",
    onLeave: ctx.onLeave,
  });
  const form = taskForm({
    cat,
    r,
    task,
    recommended: last.items[0]?.concurrency,
    onSaved: (saved) => {
      cat.tasks.set(saved.id, saved);
      title.textContent = cat.taskTitle(saved);
      replace(message, notice("ok", "Task saved. The next runs use the new configuration."));
    },
  });
  append(
    root,
    h("div", { class: "crumbs" }, h("a", { href: "#/scheduling" }, "Scheduling"), " › Task"),
    h(
      "div",
      { class: "page-head" },
      title,
      h("span", { class: "type" }, task.type),
      staleBadge(task),
      h("span", { class: "spacer" }),
      taskActions(task, ctx, message),
    ),
    staleNotice(task, "task"),
    message,
    schedules.el,
    h("section", { class: "card" }, jobs),
    h("section", { class: "card" }, h("h2", {}, "Configuration"), form),
  );
  schedules.load();
  // Next and last runs change when a schedule fires or changes, or a job of the task is
  // queued (its schedule fired, if that event was missed).
  liveRefresh({
    kinds: "queued,skipped,fired,changed",
    wanted: (ev) => ev.kind === "changed" || ev.task_id === id,
    refresh: () => schedules.load(),
    onLeave: ctx.onLeave,
  });
}
