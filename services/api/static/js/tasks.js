// Operations › Scheduling: tasks, the task form, a task's page.

import { del, get, patch, post, query } from "./api.js";
import { SLOTS, TYPES, capitalize } from "./catalog.js";
import {
  append,
  badge,
  busy,
  bytes,
  clearErrors,
  field,
  h,
  notice,
  plural,
  replace,
  shortId,
  showError,
  tabs,
  utc,
  when,
} from "./dom.js";
import { historyView, jobList, openJob } from "./jobs.js";
import { attachForm, scheduleFields, scheduleTable, schedulesUnavailable } from "./schedules.js";

function header(current) {
  return [
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: -1 }, "Scheduling"),
      h("a", { href: "#/scheduling/tasks/new", class: "button primary" }, "New task"),
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
    historyView(root, { ...ctx, flashId: created });
    return;
  }
  const body = h("div", {}, h("p", { class: "muted" }, "Loading tasks…"));
  append(root, body);
  const [schedules, jobs] = await Promise.all([
    get("/schedules").catch(() => null),
    get(`/jobs${query({ limit: 200 })}`).catch(() => ({ items: [] })),
  ]);
  replace(body, taskTable(ctx.cat, schedules, jobs.items));
}

function taskTable(cat, schedules, jobs) {
  const tasks = [...cat.tasks.values()];
  if (!tasks.length) {
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
  const lastJob = new Map();
  for (const j of jobs) if (!lastJob.has(j.task_id)) lastJob.set(j.task_id, j);
  const schedulesOf = (id) => (schedules || []).filter((s) => s.task_id === id);
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
        tasks.map((t) => {
          const own = schedulesOf(t.id);
          const next = own
            .filter((s) => s.enabled && s.next_run_at)
            .map((s) => s.next_run_at)
            .sort()[0];
          const job = lastJob.get(t.id);
          const run = h("button", { type: "button", class: "small" }, "Run now");
          run.addEventListener("click", () => busy(run, () => runNow(t.id, cat, run)));
          return h(
            "tr",
            {},
            h(
              "td",
              {},
              h("a", { href: `#/scheduling/tasks/${t.id}` }, cat.taskLabel(t.id)),
              t.name ? h("div", { class: "muted small" }, cat.route(t)) : null,
            ),
            h("td", {}, h("span", { class: "type" }, t.type)),
            h("td", {}, labelList(t.labels)),
            h(
              "td",
              {},
              schedules === null
                ? h("span", { class: "muted" }, "—")
                : own.length
                  ? [
                      `${own.length} `,
                      next
                        ? h("span", { class: "muted" }, "· next ", when(next, { seconds: false }))
                        : h("span", { class: "muted" }, "· paused"),
                    ]
                  : h("span", { class: "muted" }, "on demand"),
            ),
            h(
              "td",
              {},
              job ? [badge(job.status), " ", when(job.queued_at)] : h("span", { class: "muted" }, "never ran"),
            ),
            h("td", { class: "actions-cell" }, run),
          );
        }),
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

// The task form: type → connectors → labels → options → (new tasks) schedules.
function taskForm({ cat, task = null, preset = new URLSearchParams(), recommended = null, onSaved }) {
  const editing = Boolean(task);
  let type = task?.type || (TYPES[preset.get("type")] ? preset.get("type") : "backup");
  const initial = (slot) => task?.[slot] ?? preset.get(slot) ?? preset.get("connector");

  const typeField = h(
    "fieldset",
    { class: "field types", dataset: { fieldBox: "type" }, hidden: editing },
    h("legend", {}, "Type"),
    Object.entries(TYPES).map(([key, text]) =>
      h(
        "label",
        { class: "type-card" },
        h("input", {
          type: "radio",
          name: "type",
          value: key,
          checked: key === type,
          disabled: editing && key !== type,
        }),
        h("span", { class: "type-name" }, capitalize(key)),
        h("span", { class: "type-text" }, text),
      ),
    ),
  );
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
  const pickers = h("div", { class: "pickers" });
  const options = h("div", { class: "type-options" });
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
  const advanced = h(
    "details",
    { class: "advanced", open: Boolean(task?.concurrency || task?.window) },
    h("summary", {}, "Advanced options"),
    field("Concurrency", concurrency, {
      name: "concurrency",
      hint:
        "How many operations plakar runs in parallel (-concurrency). Empty: the runner sets a recommended value for its host" +
        (recommended ? `; the last run used ${recommended}.` : ". Only change it for a reason."),
    }),
    windowBox,
  );

  const schedules = [];
  const scheduleList = h("div", { class: "schedule-list" });
  const submit = h("button", { type: "submit", class: "primary" });
  const submitText = () => {
    submit.textContent = editing
      ? "Save changes"
      : schedules.length
        ? `Save with ${plural(schedules.length, "schedule")}`
        : "Save and run once";
  };
  const renumber = () => {
    schedules.forEach((s, i) => {
      s.box.querySelector("legend").textContent = `Schedule ${i + 1}`;
      for (const el of s.box.querySelectorAll("[data-field-box],[data-field]")) {
        for (const key of ["fieldBox", "field"]) {
          if (el.dataset[key]) el.dataset[key] = el.dataset[key].replace(/^schedules\.\d+\./, `schedules.${i}.`);
        }
      }
    });
    submitText();
  };
  const addSchedule = () => {
    const fields = scheduleFields(`schedules.${schedules.length}.`);
    const entry = { value: fields.value, box: null };
    const remove = h("button", { type: "button", class: "ghost small" }, "Remove");
    entry.box = h(
      "fieldset",
      { class: "schedule card" },
      h("legend", {}),
      fields.el,
      h("div", { class: "actions" }, remove),
    );
    remove.addEventListener("click", () => {
      schedules.splice(schedules.indexOf(entry), 1);
      entry.box.remove();
      renumber();
    });
    schedules.push(entry);
    scheduleList.append(entry.box);
    renumber();
    entry.box.querySelector("select").focus();
  };
  const scheduleSection = editing
    ? null
    : h(
        "section",
        { class: "schedules-section", dataset: { fieldBox: "schedules" } },
        h("h3", {}, "Schedules"),
        h(
          "p",
          { class: "hint" },
          "Save without a schedule to run the task once, right away. Attach schedules to run it again and again.",
        ),
        scheduleList,
        h("button", { type: "button", class: "ghost", onclick: addSchedule }, "+ Attach a schedule"),
      );

  const form = h(
    "form",
    { class: "form task-form", novalidate: true, "aria-label": editing ? "Task configuration" : "New task" },
    h("div", { class: "form-error" }),
    typeField,
    h(
      "div",
      { class: "grid2" },
      pickers,
      h(
        "div",
        { class: "stack" },
        field("Name", name, { name: "name" }),
        field("Labels", labels, { name: "labels", hint: " " }),
      ),
    ),
    options,
    advanced,
    scheduleSection,
    h("div", { class: "actions" }, submit),
  );
  const labelsHint = form.querySelector(`[data-field-box="labels"] .hint`);

  let snapshotRequest = 0;
  const selects = {};
  const snapshotPicker = h("select", {});
  const loadSnapshots = async () => {
    const storeId = selects.store_id?.value;
    const mine = ++snapshotRequest;
    const hint = form.querySelector(`[data-field-box="snapshot_id"] .hint`);
    const keep = snapshotPicker.value || task?.snapshot_id || preset.get("snapshot_id") || "";
    const latest = h("option", { value: "" }, "Latest snapshot carrying all the labels (default)");
    replace(snapshotPicker, latest);
    if (!storeId) {
      replace(hint, "Choose the store first.");
      return;
    }
    snapshotPicker.disabled = true;
    replace(hint, "Loading the store's snapshots…");
    try {
      const items = (await get(`/connectors/${storeId}/snapshots`)).sort((a, b) =>
        b.created_at.localeCompare(a.created_at),
      );
      if (mine !== snapshotRequest) return;
      for (const s of items) {
        const tags = s.tags.length ? ` · ${s.tags.join(", ")}` : "";
        snapshotPicker.append(
          h(
            "option",
            { value: s.id },
            `${shortId(s.id)} · ${utc(s.created_at, { seconds: false })}${tags} · ${bytes(s.size)}`,
          ),
        );
      }
      if (keep && !items.some((s) => s.id.startsWith(keep)))
        snapshotPicker.append(h("option", { value: keep }, `${keep} (not found in the store)`));
      snapshotPicker.value = (keep && items.find((s) => s.id.startsWith(keep))?.id) || keep;
      replace(
        hint,
        items.length ? `${plural(items.length, "snapshot")} in this store.` : "This store has no snapshot yet.",
      );
    } catch (e) {
      if (mine !== snapshotRequest) return;
      if (keep) snapshotPicker.append(h("option", { value: keep }, keep));
      snapshotPicker.value = keep;
      replace(hint, notice("error", `Could not list the snapshots: ${e.message}`));
    } finally {
      if (mine === snapshotRequest) snapshotPicker.disabled = false;
    }
  };

  const renderType = () => {
    replace(pickers);
    for (const key of Object.keys(selects)) delete selects[key];
    for (const [slot, role, label] of SLOTS[type]) {
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
      append(
        pickers,
        field(label, select, {
          name: slot,
          hint: choices.length
            ? null
            : h(
                "span",
                {},
                `No ${role} connector yet. `,
                h("a", { href: `#/connectors/new?role=${role}` }, `Create a ${role}`),
              ),
        }),
      );
    }
    replace(
      labelsHint,
      {
        backup: "Set as tags on the new snapshot. Separate with spaces.",
        restore:
          "Without a chosen snapshot, the latest one carrying all these labels is restored. Separate with spaces.",
        sync: "Only snapshots carrying all these labels are copied. Separate with spaces.",
        check: "Only snapshots carrying all these labels are checked. Separate with spaces.",
      }[type],
    );
    replace(options);
    if (type === "restore") {
      append(options, field("Snapshot", snapshotPicker, { name: "snapshot_id", hint: " ", wide: true }));
      selects.store_id.addEventListener("change", loadSnapshots);
      loadSnapshots();
    }
    windowBox.hidden = !(type === "sync" || type === "check");
    if (type === "sync")
      windowBox.querySelector(".hint").textContent =
        "Only snapshots created within this duration before the job runs are copied. Empty: all.";
    if (type === "check")
      windowBox.querySelector(".hint").textContent =
        "Only snapshots created within this duration before the job runs are checked. Empty: all.";
  };

  typeField.addEventListener("change", (e) => {
    type = e.target.value;
    clearErrors(form);
    renderType();
  });

  const body = () => {
    const out = {
      name: name.value.trim() || null,
      labels: labels.value.split(/[\s,]+/).filter(Boolean),
      concurrency: concurrency.value === "" ? null : Number(concurrency.value),
    };
    if (!editing) out.type = type;
    for (const [slot] of SLOTS[type]) out[slot] = selects[slot].value || null;
    if (type === "restore") out.snapshot_id = snapshotPicker.value || null;
    if (type === "sync" || type === "check") out.window = window.value.trim() || null;
    if (schedules.length) out.schedules = schedules.map((s) => s.value());
    return out;
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        const answer = editing ? await patch(`/tasks/${task.id}`, body()) : await post("/tasks", body());
        onSaved(answer);
      } catch (err) {
        showError(form, err);
      }
    });
  });

  renderType();
  submitText();
  return form;
}

export async function newTaskView(root, ctx) {
  append(
    root,
    h("div", { class: "crumbs" }, h("a", { href: "#/scheduling" }, "Scheduling"), " › New task"),
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "New task")),
    h(
      "div",
      { class: "card" },
      taskForm({
        cat: ctx.cat,
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

export async function taskView(root, ctx) {
  const id = ctx.params[0];
  let task;
  try {
    task = await get(`/tasks/${id}`);
  } catch (e) {
    append(root, notice("error", e.message), h("a", { href: "#/scheduling" }, "Back to the tasks"));
    return;
  }
  const cat = ctx.cat;
  const last = await get(`/jobs${query({ task_id: id, limit: 1 })}`).catch(() => ({ items: [] }));
  const message = h("div");
  const title = h("h1", { tabindex: -1 }, cat.taskTitle(task));
  const run = h("button", { type: "button", class: "primary" }, "Run now");
  run.addEventListener("click", () => busy(run, () => runNow(id, cat, run)));
  const remove = h("button", { type: "button", class: "danger" }, "Delete task");
  remove.addEventListener("click", () => {
    if (!confirm(`Delete the task "${cat.taskTitle(task)}" and its schedules? Its jobs stay in the history.`)) return;
    busy(remove, async () => {
      try {
        await del(`/tasks/${id}`);
        ctx.go("#/scheduling");
      } catch (e) {
        replace(message, notice("error", e.message));
      }
    });
  });

  const schedules = h("div", {}, h("p", { class: "muted" }, "Loading schedules…"));
  const attachSlot = h("div");
  const attachButton = h("button", { type: "button", class: "ghost" }, "+ Attach a schedule");
  const loadSchedules = async () => {
    try {
      const items = await get(`/schedules${query({ task_id: id })}`);
      replace(schedules, scheduleTable(items, cat, { onChange: loadSchedules }));
    } catch (e) {
      replace(schedules, e.unavailable ? schedulesUnavailable() : notice("error", e.message));
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
        loadSchedules();
      }),
    );
    attachSlot.querySelector("select").focus();
  });

  append(
    root,
    h("div", { class: "crumbs" }, h("a", { href: "#/scheduling" }, "Scheduling"), " › Task"),
    h(
      "div",
      { class: "page-head" },
      title,
      h("span", { class: "type" }, task.type),
      h("span", { class: "spacer" }),
      run,
      remove,
    ),
    message,
    h("section", { class: "card" }, h("h2", {}, "Schedules"), schedules, attachButton, attachSlot),
    h(
      "section",
      { class: "card" },
      jobList({
        toolbar: h("h2", {}, "Jobs"),
        load: (limit, cursor) => get(`/jobs${query({ task_id: id, limit, cursor })}`),
        cat,
        empty: "This task has not run yet.",
        onLeave: ctx.onLeave,
      }),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Configuration"),
      taskForm({
        cat,
        task,
        recommended: last.items[0]?.concurrency,
        onSaved: (saved) => {
          cat.tasks.set(saved.id, saved);
          title.textContent = cat.taskTitle(saved);
          replace(message, notice("ok", "Task saved. The next runs use the new configuration."));
        },
      }),
    ),
  );
  loadSchedules();
}
