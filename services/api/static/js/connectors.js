// Connectors: list, create/edit form, a connector's page and its actions.

import { del, get, patch, post, query, unavailableText } from "./api.js";
import { capitalize } from "./catalog.js";
import {
  append,
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
import { freshnessField, staleBadge, staleNotice } from "./freshness.js";
import { runOnField } from "./groups.js";
import { jobList } from "./jobs.js";
import { rules } from "./rules.js";
import { scheduleTable, schedulesUnavailable } from "./schedules.js";

const ROLES = {
  source: "what to back up",
  store: "where snapshots are kept",
  destination: "where restores go",
};
// `cr`: the connectors' rules (`connectors` of GET /rules): the location kinds, the
// options each role takes with each, the limits.
const kindOf = (cr, location) => cr.kinds.find((k) => k.prefixes.some((p) => location.startsWith(p))) ?? null;
const optionsFor = (cr, role, location) => kindOf(cr, location)?.options[role] ?? [];
const isSecret = (cr, key) => !cr.non_secret.includes(key);
const examples = (cr, role) => cr.kinds.filter((k) => role in k.options).map((k) => k.example);

// The option that encrypts a store: typed twice in its own fields.
const PASSPHRASE = "passphrase";

const roleBadge = (role) => h("span", { class: `role r-${role}` }, role);

function optionsText(options) {
  const keys = Object.keys(options);
  if (!keys.length) return h("span", { class: "muted" }, "—");
  return keys.map((k) =>
    h("span", { class: "opt" }, h("span", { class: "k" }, k), "=", h("span", { class: "v" }, options[k])),
  );
}

function noConnectors(role) {
  return h(
    "div",
    { class: "empty-state" },
    h("p", {}, role ? `No ${role} connector yet.` : "No connectors yet."),
    h(
      "p",
      { class: "muted" },
      "Create a source (what to back up) and a store (where snapshots are kept), then a backup task.",
    ),
    h("a", { href: `#/connectors/new${role ? `?role=${role}` : ""}`, class: "button primary" }, "Create a connector"),
  );
}

function connectorTable(list) {
  const order = Object.keys(ROLES);
  list.sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role) || a.name.localeCompare(b.name));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "connectors" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Role", "Location", "Options", "Created"].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        list.map((c) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#/connectors/${c.id}` }, c.name)),
            h("td", {}, roleBadge(c.role)),
            h("td", { class: "mono" }, c.location),
            h("td", { class: "opts" }, optionsText(c.options)),
            h("td", {}, when(c.created_at)),
          ),
        ),
      ),
    ),
  );
}

export async function connectorsView(root, ctx) {
  const role = ROLES[ctx.query.get("role")] ? ctx.query.get("role") : "";
  const list = await get(`/connectors${query({ role })}`);
  append(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: -1 }, "Connectors"),
      h(
        "a",
        { href: `#/connectors/new${role ? `?role=${role}` : ""}`, class: "button primary", dataset: { needs: "admin" } },
        "New connector",
      ),
    ),
    tabs(
      [["", "All"], ...Object.keys(ROLES).map((r) => [r, `${capitalize(r)}s`])].map(([r, label]) => [
        r,
        label,
        `#/connectors${r ? `?role=${r}` : ""}`,
      ]),
      role,
    ),
    list.length ? connectorTable(list) : noConnectors(role),
  );
}

// The option names a row offers: those allowed, and a key the rules no longer allow
// (saved under older rules) so that it stays listed, to remove it.
function keyChoices(select, allowed, wanted = select.value) {
  const names = allowed.map((o) => o.key);
  if (wanted && !names.includes(wanted)) names.push(wanted);
  replace(select, ...names.map((n) => h("option", { value: n }, n)));
  select.value = wanted || names[0] || "";
}

// One option: its name, its value (a password field when secret), its help.
// `allowed()`: the options of the role and the location's kind, as they are now.
function optionRow(cr, key, value, { allowed, onChange, onRemove }) {
  const k = h("select", { class: "mono", "aria-label": "Option name" });
  const v = h("input", {
    type: "text",
    class: "mono",
    placeholder: "value",
    maxlength: cr.max_option_value,
    value,
    "aria-label": "Option value",
    autocomplete: "off",
    spellcheck: "false",
  });
  const help = h("div", { class: "hint" });
  const describe = () => {
    v.type = isSecret(cr, k.value) ? "password" : "text";
    const rule = allowed().find((o) => o.key === k.value);
    help.textContent = rule ? rule.help : "not an option of this kind of connector: remove it";
  };
  keyChoices(k, allowed(), key);
  k.addEventListener("change", () => {
    describe();
    onChange();
  });
  describe();
  const row = h("div", { class: "option-row", dataset: { fieldBox: `options.${key}` } }, k, v);
  const remove = h("button", { type: "button", class: "ghost small", "aria-label": `Remove option ${key}` }, "Remove");
  remove.addEventListener("click", () => {
    onRemove();
    row.remove();
    onChange();
  });
  row.append(remove, help);
  return { row, input: v };
}

// The store's passphrase: typed twice, in its own fields (never an option row, so there is
// only one). Editing, empty fields keep the stored secret. `check()`: a problem to show
// before anything is sent, or null.
function passphraseFields(cr, { role, location, current }) {
  const stored = Boolean(current?.options?.[PASSPHRASE]);
  const password = () =>
    h("input", { type: "password", class: "mono", maxlength: cr.max_option_value, autocomplete: "new-password" });
  const value = password();
  const confirmation = password();
  const forget = h("input", { type: "checkbox" });
  const rule = () => optionsFor(cr, role.value, location.value).find((o) => o.key === PASSPHRASE);
  const hint = h("div", { class: "hint" });
  const el = h(
    "fieldset",
    { class: "field options passphrase" },
    h("legend", {}, "Encryption"),
    h(
      "div",
      { class: "grid2" },
      field("Passphrase", value, { name: `options.${PASSPHRASE}` }),
      field("Confirm passphrase", confirmation, { name: "passphrase_confirmation" }),
    ),
    stored ? h("div", { class: "field check" }, h("label", {}, forget, " Remove the stored passphrase")) : null,
    hint,
  );
  const sync = () => {
    // Every kind of store takes one; until the location says which kind, it is offered.
    el.hidden = !stored && (role.value !== "store" || (kindOf(cr, location.value) !== null && !rule()));
    value.disabled = confirmation.disabled = forget.checked;
    const kept = stored
      ? "A passphrase is stored: leave both fields empty to keep it."
      : "Empty: the store is not encrypted.";
    hint.textContent = `${capitalize(rule()?.help ?? "encrypts the store")}. ${kept}`;
  };
  role.addEventListener("change", sync);
  location.addEventListener("input", sync);
  forget.addEventListener("change", sync);
  sync();
  const check = () => {
    if (el.hidden || forget.checked || value.value === confirmation.value) return null;
    return { field: "passphrase_confirmation", message: "The two passphrases differ: type the same one twice." };
  };
  // Added to the options sent: a new passphrase, "" to remove the stored one, or nothing.
  const into = (options) => {
    if (el.hidden) return;
    if (forget.checked) options[PASSPHRASE] = "";
    else if (value.value) options[PASSPHRASE] = value.value;
  };
  return { el, check, into };
}

// The options of a connector but the passphrase: the names the rules allow for the role and
// the kind of location typed, kept in step as they change. `values()`: the options to send.
function optionsEditor(cr, { role, location, current }) {
  const editing = Boolean(current);
  const rows = h("div", { class: "option-rows" });
  const removed = new Set();
  const allowed = () => optionsFor(cr, role.value, location.value).filter((o) => o.key !== PASSPHRASE);
  const used = () => [...rows.querySelectorAll("select")].map((k) => k.value);
  const addOption = h("button", { type: "button", class: "ghost small" }, "+ Add option");
  const syncButtons = () => {
    const free = allowed().filter((o) => !used().includes(o.key));
    addOption.disabled = free.length === 0;
  };
  const addRow = (key, value = "") => {
    const onRemove = () => {
      if (editing && key) removed.add(key);
    };
    const { row, input } = optionRow(cr, key, value, { allowed, onChange: syncButtons, onRemove });
    rows.append(row);
    syncButtons();
    return input;
  };
  for (const [k, v] of Object.entries(current?.options ?? {})) if (k !== PASSPHRASE) addRow(k, v);
  addOption.addEventListener("click", () => {
    const next = allowed().find((o) => !used().includes(o.key));
    if (next) addRow(next.key).focus();
  });
  const syncKind = () => {
    location.placeholder = examples(cr, role.value).join("  or  ");
    for (const k of rows.querySelectorAll("select")) keyChoices(k, allowed());
    for (const k of rows.querySelectorAll("select")) k.dispatchEvent(new Event("change"));
    syncButtons();
  };
  role.addEventListener("change", syncKind);
  location.addEventListener("input", syncKind);
  syncKind();
  const passphrase = passphraseFields(cr, { role, location, current });

  const values = () => {
    const options = {};
    for (const row of rows.querySelectorAll(".option-row")) {
      const key = row.querySelector("select").value;
      row.dataset.fieldBox = `options.${key}`;
      if (key) options[key] = row.querySelector("input").value;
    }
    // PATCH merges options: an empty value removes a key.
    if (editing) for (const key of removed) if (!(key in options)) options[key] = "";
    passphrase.into(options);
    return options;
  };
  const el = h(
    "fieldset",
    { class: "field options", dataset: { fieldBox: "options" } },
    h("legend", {}, "Options"),
    h(
      "p",
      { class: "hint" },
      "The plakar parameters this kind of connector takes. Values are secrets unless known not to be: kept by the control plane, passed to plakar, never shown again.",
    ),
    rows,
    h("div", { class: "row-actions" }, addOption),
  );
  return { el: [passphrase.el, el], values, check: passphrase.check };
}

function connectorFields(cr, current, presetRole) {
  const name = h("input", {
    type: "text",
    required: true,
    maxlength: 128,
    value: current?.name ?? "",
    autocomplete: "off",
  });
  const role = h(
    "select",
    { disabled: Boolean(current) },
    Object.entries(ROLES).map(([r, text]) => h("option", { value: r }, `${capitalize(r)} — ${text}`)),
  );
  role.value = current?.role ?? (ROLES[presetRole] ? presetRole : "source");
  const location = h("input", {
    type: "text",
    required: true,
    class: "mono",
    maxlength: cr.max_location,
    value: current?.location ?? "",
    autocomplete: "off",
    spellcheck: "false",
  });
  return { name, role, location };
}

const RUN_ON_HINT =
  "The runners that act on it (test, snapshots, files) and run the tasks using it: a source on one host's disk names that host's group.";

// Create and edit. Secrets come back masked: left as they are, the api keeps them.
// Option names are those the api's rules allow for the role and the location's kind.
function connectorForm(cr, current, presetRole, onSaved) {
  const editing = Boolean(current);
  const { name, role, location } = connectorFields(cr, current, presetRole);
  const options = optionsEditor(cr, { role, location, current });
  const runOn = runOnField(current?.runner_group, RUN_ON_HINT);
  const freshness = freshnessField(
    current?.freshness,
    "It turns stale (red, and a freshness.lost event) when no successful job of it finished within this.",
  );
  const submit = h(
    "button",
    { type: "submit", class: "primary", dataset: { needs: "admin" } },
    editing ? "Save changes" : "Create connector",
  );
  const roots = cr.allowed_paths.length ? ` It must be under ${cr.allowed_paths.join(", ")}.` : "";
  const form = h(
    "form",
    { class: "form connector-form", novalidate: true, "aria-label": editing ? "Edit connector" : "New connector" },
    h("div", { class: "form-error" }),
    h(
      "div",
      { class: "grid2" },
      field("Name", name, { name: "name", hint: "Unique among connectors of the same role." }),
      field("Role", role, { name: "role", hint: editing ? "The role of a connector cannot change." : null }),
    ),
    field("Location", location, {
      name: "location",
      hint: `An absolute path or fs:///path; for a store also ptar:///file.ptar or the http(s):// URL of a plakar server.${roots}`,
      wide: true,
    }),
    options.el,
    h("div", { class: "grid2" }, runOn.el, freshness.el),
    h(
      "div",
      { class: "actions" },
      h("a", { href: current ? `#/connectors/${current.id}` : "#/connectors", class: "button ghost" }, "Cancel"),
      submit,
    ),
  );

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(form);
    const problem = options.check();
    if (problem) return showError(form, problem);
    const body = {
      name: name.value,
      location: location.value,
      options: options.values(),
      runner_group: runOn.value(),
      freshness: freshness.value(),
    };
    if (!editing) body.role = role.value;
    busy(submit, async () => {
      try {
        onSaved(editing ? await patch(`/connectors/${current.id}`, body) : await post("/connectors", body));
      } catch (err) {
        showError(form, err);
      }
    });
  });
  return form;
}

export async function newConnectorView(root, ctx) {
  const { connectors: cr } = await rules();
  append(
    root,
    h("div", { class: "crumbs" }, h("a", { href: "#/connectors" }, "Connectors"), " › New"),
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "New connector")),
    h(
      "div",
      { class: "card narrow" },
      connectorForm(cr, null, ctx.query.get("role"), (c) => ctx.go(`#/connectors/${c.id}`)),
    ),
  );
  root.querySelector("input").focus();
}

export async function editConnectorView(root, ctx) {
  const [c, r] = await Promise.all([get(`/connectors/${ctx.params[0]}`), rules()]);
  append(
    root,
    h(
      "div",
      { class: "crumbs" },
      h("a", { href: "#/connectors" }, "Connectors"),
      " › ",
      h("a", { href: `#/connectors/${c.id}` }, c.name),
      " › Edit",
    ),
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, `Edit ${c.name}`)),
    h(
      "div",
      { class: "card narrow" },
      connectorForm(r.connectors, c, null, () => ctx.go(`#/connectors/${c.id}`)),
    ),
  );
}

// The answer of a runner to "test" or "initialize", with plakar's output folded.
function actionResult(what, result) {
  return h(
    "div",
    { class: `action-result ${result.ok ? "ok" : "failed"}`, role: "status" },
    h("strong", {}, `${what}: ${result.ok ? "OK" : "failed"}`),
    " ",
    result.message,
    result.output?.length
      ? h(
          "details",
          {},
          h("summary", {}, `plakar output (${plural(result.output.length, "line")})`),
          h("pre", { class: "output small" }, result.output.join("\n")),
        )
      : null,
  );
}

// What the control plane knows of a store: Initialize is offered unless it is initialized.
const STORE_STATES = new Map([
  [true, "Initialized: ready for backups."],
  [false, "Not initialized: Initialize creates it (a test found no store there)."],
  [null, "Not known yet: Test connection tells; Initialize creates it if there is none."],
]);

function initializeText(c) {
  const kind = c.options[PASSPHRASE]
    ? "an encrypted store, with the stored passphrase"
    : "a store that is not encrypted";
  return `Initialize "${c.name}"? plakar creates ${kind} at ${c.location}. An existing store is never overwritten.`;
}

// The buttons that ask a runner (Test connection, Initialize). After each, the store's
// state is read again: the answer may have taught the control plane whether it exists.
function connectorActions(c, result) {
  const state = h("dd", {});
  const act = (what, path, question) => {
    const button = h("button", { type: "button" }, what);
    button.addEventListener("click", () => {
      if (question && !confirm(question)) return;
      busy(button, async () => {
        replace(result, h("p", { class: "muted", role: "status" }, `${what}… (a runner is asked to run plakar)`));
        try {
          replace(result, actionResult(what, await post(`/connectors/${c.id}/${path}`)));
        } catch (e) {
          replace(result, actionResult(what, { ok: false, message: e.message }));
        }
        if (c.role === "store") show((await get(`/connectors/${c.id}`).catch(() => c)).initialized ?? null);
      });
    });
    return button;
  };
  const initialize = c.role === "store" ? act("Initialize", "initialize", initializeText(c)) : null;
  if (initialize) initialize.dataset.needs = "admin";
  const show = (known) => {
    replace(state, STORE_STATES.get(known));
    initialize.hidden = known === true;
  };
  if (initialize) show(c.initialized ?? null);
  const details = initialize ? [h("dt", {}, "Store"), state] : [];
  const test = act("Test connection", "test");
  test.dataset.needs = "operator";
  return { buttons: [test, initialize], details };
}

export async function connectorView(root, ctx) {
  const [id, tabParam] = ctx.params;
  const c = await get(`/connectors/${id}`);
  const tab = tabParam || "dashboard";
  const cat = ctx.cat;
  const result = h("div", { class: "action-slot" });
  const actions = connectorActions(c, result);
  const remove = h("button", { type: "button", class: "danger", dataset: { needs: "admin" } }, "Delete");
  remove.addEventListener("click", () => {
    if (!confirm(`Delete the ${c.role} "${c.name}"? Its data is not touched.`)) return;
    busy(remove, async () => {
      try {
        await del(`/connectors/${id}`);
        ctx.go("#/connectors");
      } catch (e) {
        replace(result, notice("error", e.message));
      }
    });
  });
  const taskType = { source: "backup", store: "backup", destination: "restore" }[c.role];
  const slot = { source: "source_id", store: "store_id", destination: "destination_id" }[c.role];
  append(
    root,
    h("div", { class: "crumbs" }, h("a", { href: "#/connectors" }, "Connectors"), " › ", c.name),
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: -1 }, c.name),
      roleBadge(c.role),
      staleBadge(c),
      h("span", { class: "spacer" }),
      actions.buttons,
      h(
        "a",
        { href: `#/scheduling/tasks/new?type=${taskType}&${slot}=${id}`, class: "button", dataset: { needs: "admin" } },
        "New task",
      ),
      h("a", { href: `#/connectors/${id}/edit`, class: "button", dataset: { needs: "admin" } }, "Edit"),
      remove,
    ),
    h(
      "dl",
      { class: "details inline" },
      h("dt", {}, "Location"),
      h("dd", { class: "mono" }, c.location),
      h("dt", {}, "Options"),
      h("dd", { class: "opts" }, optionsText(c.options)),
      actions.details,
      h("dt", {}, "Created"),
      h("dd", {}, utc(c.created_at), " ", h("span", { class: "muted" }, "(", when(c.created_at), ")")),
    ),
    staleNotice(c, "connector"),
    result,
    tabs(
      [
        ["dashboard", "Dashboard", `#/connectors/${id}`],
        ["scheduling", "Scheduling", `#/connectors/${id}/scheduling`],
        c.role === "store" ? ["snapshots", "Snapshots", `#/connectors/${id}/snapshots`] : null,
      ].filter(Boolean),
      tab,
    ),
  );
  const body = h("div", { class: "tab-body" });
  append(root, body);
  if (tab === "scheduling") await schedulingTab(body, id, cat);
  else if (tab === "snapshots") await snapshotsTab(body, c);
  else dashboardTab(body, id, ctx);
}

// Past jobs and upcoming runs of every task involving the connector.
function dashboardTab(body, id, ctx) {
  const upcoming = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  let viewMissing = false;
  const load = async (limit, cursor) => {
    if (!viewMissing) {
      try {
        const view = await get(`/connectors/${id}/jobs`);
        renderUpcoming(upcoming, view.upcoming, view.upcoming_until, ctx.cat);
        return { items: view.past, next_cursor: null };
      } catch (e) {
        if (!e.unavailable) throw e;
        viewMissing = true;
        replace(upcoming, notice("info", unavailableText("Upcoming runs")));
      }
    }
    return get(`/jobs${query({ connector_id: id, limit, cursor })}`);
  };
  append(
    body,
    h("section", {}, h("h2", {}, "Upcoming"), upcoming),
    h(
      "section",
      {},
      jobList({
        load,
        cat: ctx.cat,
        toolbar: h("h2", {}, "Past jobs"),
        empty: "No job has involved this connector yet.",
        onLeave: ctx.onLeave,
      }),
    ),
  );
}

const UPCOMING_SHOWN = 8;

// `until`: every run up to this instant is in `all` (the api caps the list).
function renderUpcoming(el, all, until, cat) {
  if (!all.length) {
    replace(el, h("p", { class: "empty" }, "Nothing scheduled. Attach a schedule to a task that uses this connector."));
    return;
  }
  // The list refreshes with the jobs: keep it unfolded once the user asked.
  const unfolded = el.dataset.unfolded === "yes";
  const items = unfolded ? all : all.slice(0, UPCOMING_SHOWN);
  const more =
    all.length > items.length
      ? h(
          "div",
          { class: "more" },
          h(
            "button",
            {
              type: "button",
              class: "ghost small",
              onclick: () => {
                el.dataset.unfolded = "yes";
                renderUpcoming(el, all, until, cat);
              },
            },
            `Show the next ${all.length} runs (until ${utc(until, { seconds: false })})`,
          ),
        )
      : null;
  replace(
    el,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "upcoming" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["When", "UTC", "Task"].map((c) => h("th", { scope: "col" }, c)),
          ),
        ),
        h(
          "tbody",
          {},
          items.map((u) =>
            h(
              "tr",
              {},
              h("td", {}, when(u.at, { seconds: false })),
              h("td", { class: "mono" }, utc(u.at, { seconds: false })),
              h("td", {}, h("a", { href: `#/scheduling/tasks/${u.task_id}` }, cat.taskTitle(u.task_id))),
            ),
          ),
        ),
      ),
    ),
    more,
  );
}

async function schedulingTab(body, id, cat) {
  const reload = async () => {
    let items;
    try {
      items = await get(`/connectors/${id}/schedules`);
    } catch (e) {
      if (!e.unavailable) return replace(body, notice("error", e.message));
      try {
        items = await get(`/schedules${query({ connector_id: id })}`);
      } catch (e2) {
        return replace(body, e2.unavailable ? schedulesUnavailable() : notice("error", e2.message));
      }
    }
    replace(body, scheduleTable(items, cat, { showTask: true, onChange: reload }));
  };
  await reload();
}

async function snapshotsTab(body, c) {
  replace(body, h("p", { class: "muted", role: "status" }, "Listing snapshots… (a runner is asked to run plakar)"));
  let items;
  try {
    items = await get(`/connectors/${c.id}/snapshots`);
  } catch (e) {
    replace(body, notice("error", `Could not list the snapshots: ${e.message}`));
    return;
  }
  if (!items.length) {
    replace(body, h("p", { class: "empty" }, "No snapshot in this store yet."));
    return;
  }
  items.sort((a, b) => b.created_at.localeCompare(a.created_at));
  replace(
    body,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "snapshots" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Snapshot", "Created", "Tags", "Size", "Root", ""].map((x) => h("th", { scope: "col" }, x)),
          ),
        ),
        h(
          "tbody",
          {},
          items.map((s) =>
            h(
              "tr",
              {},
              h(
                "td",
                { class: "mono" },
                h("a", { href: `#/connectors/${c.id}/snapshots/${s.id}`, title: s.id }, shortId(s.id)),
              ),
              h("td", {}, when(s.created_at), h("div", { class: "muted small" }, utc(s.created_at))),
              h(
                "td",
                {},
                s.tags.map((t) => h("span", { class: "tag" }, t)),
              ),
              h("td", { class: "num" }, bytes(s.size)),
              h("td", { class: "mono" }, s.root),
              h(
                "td",
                {},
                h(
                  "a",
                  { href: `#/scheduling/tasks/new?type=restore&store_id=${c.id}&snapshot_id=${s.id}`, class: "small" },
                  "Restore…",
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}
