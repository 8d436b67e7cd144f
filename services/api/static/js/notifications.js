// Notifications: targets (a webhook, or email over SMTP), the rules that say which events
// go to which target, and the deliveries with each of their attempts. What the events
// are comes from the api's rules (GET /rules); secrets are never shown (the api masks them).

import { del, get, post, query } from "./api.js";
import { append, busy, dataTable, field, h, notice, onSubmit, plural, replace, when } from "./dom.js";

const words = (text) => text.split(/[\s,;]+/).filter(Boolean);

function targetForm(onSaved) {
  const name = h("input", { type: "text", maxlength: 128, required: true });
  const kind = h("select", {}, h("option", { value: "webhook" }, "Webhook"), h("option", { value: "email" }, "Email"));
  const url = h("input", { type: "url", placeholder: "https://hooks.example.com/plakar", autocomplete: "off" });
  const secret = h("input", { type: "password", autocomplete: "new-password", placeholder: "optional" });
  const to = h("input", { type: "text", placeholder: "ops@example.com oncall@example.com" });
  const host = h("input", { type: "text", placeholder: "mail.example.com" });
  const port = h("input", { type: "number", min: 1, max: 65535, value: 587 });
  const username = h("input", { type: "text", autocomplete: "off", placeholder: "optional" });
  const password = h("input", { type: "password", autocomplete: "new-password", placeholder: "optional" });
  const starttls = h("input", { type: "checkbox", checked: true });
  const webhook = h(
    "div",
    { class: "grid2" },
    field("URL", url, { name: "url", hint: "Each event is POSTed there as JSON." }),
    field("Secret", secret, { name: "secret", hint: "Signs each delivery: X-Plakar-Signature, an HMAC-SHA256 of the body." }),
  );
  const email = h(
    "div",
    { class: "stack" },
    field("To", to, { name: "to", hint: "Up to 20 addresses, separated by spaces." }),
    h(
      "div",
      { class: "grid2" },
      field("SMTP host", host, { name: "smtp.host" }),
      field("SMTP port", port, { name: "smtp.port" }),
      field("SMTP username", username, { name: "smtp.username" }),
      field("SMTP password", password, { name: "smtp.password" }),
    ),
    h("div", { class: "field check", dataset: { fieldBox: "smtp.starttls" } }, h("label", {}, starttls, "STARTTLS before signing in")),
  );
  const submit = h("button", { type: "submit", class: "primary" }, "Add target");
  const form = h(
    "form",
    { class: "form card", novalidate: true, "aria-label": "New notification target", dataset: { needs: "admin" } },
    h("div", { class: "form-error" }),
    h("div", { class: "grid2" }, field("Name", name, { name: "name" }), field("Kind", kind, { name: "kind" })),
    webhook,
    email,
    h("div", { class: "actions" }, submit),
  );
  const show = () => {
    webhook.hidden = kind.value !== "webhook";
    email.hidden = kind.value !== "email";
  };
  kind.addEventListener("change", show);
  show();
  const body = () =>
    kind.value === "webhook"
      ? { name: name.value.trim(), kind: "webhook", url: url.value.trim(), secret: secret.value || null }
      : {
          name: name.value.trim(),
          kind: "email",
          to: words(to.value),
          smtp: {
            host: host.value.trim(),
            port: Number(port.value),
            username: username.value || null,
            password: password.value || null,
            starttls: starttls.checked,
          },
        };
  onSubmit(form, submit, async () => {
    await post("/notifications/targets", body());
    onSaved();
  });
  return form;
}

function ruleForm(r, cat, targets, onSaved) {
  const target = h("select", {}, targets.map((t) => h("option", { value: t.id }, t.name)));
  const boxes = r.notifications.map((n) => {
    const box = h("input", { type: "checkbox", value: n.kind, checked: n.kind === "job.failed" });
    return h("label", { title: n.meaning }, box, ` ${n.kind}`);
  });
  const task = h(
    "select",
    {},
    h("option", { value: "" }, "Every task"),
    [...cat.tasks.values()].map((t) => h("option", { value: t.id }, `${t.type} · ${cat.taskTitle(t)}`)),
  );
  const connector = h(
    "select",
    {},
    h("option", { value: "" }, "Every connector"),
    [...cat.connectors.values()].map((c) => h("option", { value: c.id }, `${c.role} · ${c.name}`)),
  );
  const submit = h("button", { type: "submit", class: "primary", disabled: !targets.length }, "Add rule");
  const form = h(
    "form",
    { class: "form card", novalidate: true, "aria-label": "New notification rule", dataset: { needs: "admin" } },
    h("div", { class: "form-error" }),
    h("div", { class: "grid2" }, field("Target", target, { name: "target_id" })),
    h(
      "fieldset",
      { class: "field events", dataset: { fieldBox: "events" } },
      h("legend", {}, "Events"),
      boxes,
      h("div", { class: "hint" }, r.notifications.map((n) => h("div", {}, h("b", {}, n.kind), `: ${n.meaning}`))),
    ),
    h(
      "div",
      { class: "grid2" },
      field("Task", task, { name: "task_id", hint: "Only this task's events." }),
      field("Connector", connector, { name: "connector_id", hint: "Only the events of jobs using it, and its freshness." }),
    ),
    h("div", { class: "actions" }, submit),
  );
  onSubmit(form, submit, async () => {
    await post("/notifications/rules", {
      target_id: target.value,
      events: boxes.map((l) => l.querySelector("input")).filter((b) => b.checked).map((b) => b.value),
      task_id: task.value || null,
      connector_id: connector.value || null,
    });
    onSaved();
  });
  return form;
}

const where = (t) => (t.kind === "webhook" ? t.url : `${t.to.join(", ")} via ${t.smtp.host}:${t.smtp.port}`);

function targetTable(targets, reload) {
  if (!targets.length) return h("p", { class: "muted" }, "No target yet: add a webhook or an email target below.");
  return dataTable(
    "targets",
    ["Name", "Kind", "Where", ""],
    targets.map((t) => {
      const result = h("span", { class: "test-result", role: "status" });
      const test = h("button", { type: "button", class: "ghost small", dataset: { needs: "admin" } }, "Send test");
      test.addEventListener("click", () =>
        busy(test, async () => {
          try {
            const sent = await post(`/notifications/targets/${t.id}/test`);
            replace(result, h("span", { class: sent.ok ? "ok" : "bad" }, sent.ok ? `Sent: ${sent.detail}` : `Failed: ${sent.detail}`));
          } catch (err) {
            replace(result, h("span", { class: "bad" }, err.message));
          }
        }),
      );
      const remove = h("button", { type: "button", class: "ghost small danger", dataset: { needs: "admin" } }, "Delete");
      remove.addEventListener("click", () =>
        busy(remove, async () => {
          if (!confirm(`Delete the target ${t.name}, its rules and its deliveries?`)) return;
          await del(`/notifications/targets/${t.id}`);
          reload();
        }),
      );
      return h(
        "tr",
        {},
        h("td", {}, t.name),
        h("td", {}, t.kind),
        h("td", { class: "mono" }, where(t)),
        h("td", { class: "actions-cell" }, test, " ", remove, " ", result),
      );
    }),
  );
}

function ruleTable(rules, targets, cat, reload) {
  if (!rules.length) return h("p", { class: "muted" }, "No rule yet: nobody is told anything.");
  const names = new Map(targets.map((t) => [t.id, t.name]));
  const scope = (r) =>
    [r.task_id ? `task ${cat.taskTitle(r.task_id)}` : null, r.connector_id ? `connector ${cat.connectorName(r.connector_id)}` : null]
      .filter(Boolean)
      .join(" and ") || "everything";
  return dataTable(
    "rules",
    ["Target", "Events", "Of", ""],
    rules.map((r) => {
      const remove = h("button", { type: "button", class: "ghost small danger", dataset: { needs: "admin" } }, "Delete");
      remove.addEventListener("click", () =>
        busy(remove, async () => {
          await del(`/notifications/rules/${r.id}`);
          reload();
        }),
      );
      return h(
        "tr",
        {},
        h("td", {}, names.get(r.target_id) ?? r.target_id),
        h("td", {}, r.events.map((e) => h("span", { class: "tag" }, e))),
        h("td", {}, scope(r)),
        h("td", {}, remove),
      );
    }),
  );
}

function deliveryTable(deliveries, targets) {
  if (!deliveries.length) return h("p", { class: "muted" }, "Nothing was sent yet.");
  const names = new Map(targets.map((t) => [t.id, t.name]));
  const status = { delivered: "succeeded", failed: "failed", pending: "running" };
  return dataTable(
    "deliveries",
    ["Event", "Target", "Status", "Attempts", "Next attempt"],
    deliveries.map((d) => {
      const last = d.attempts[d.attempts.length - 1];
      return h(
        "tr",
        {},
        h("td", {}, h("span", { class: "tag" }, d.kind), " ", when(d.created_at)),
        h("td", {}, names.get(d.target_id) ?? d.target_id),
        h("td", {}, h("span", { class: `badge s-${status[d.status]}` }, d.status)),
        h(
          "td",
          { title: d.attempts.map((a) => `#${a.attempt} ${a.at} ${a.ok ? "ok" : "failed"}: ${a.detail}`).join("\n") },
          plural(d.attempts.length, "attempt"),
          last ? ` · last: ${last.detail}` : "",
        ),
        h("td", {}, d.next_at ? when(d.next_at) : "—"),
      );
    }),
  );
}

export async function notificationsView(root, ctx) {
  const [targets, rules, deliveries] = await Promise.all([
    get("/notifications/targets"),
    get("/notifications/rules"),
    get(`/notifications/deliveries${query({ limit: 50 })}`),
  ]);
  const reload = () => {
    replace(root);
    notificationsView(root, ctx).catch((e) => append(root, notice("error", e.message)));
  };
  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "Notifications")),
    h(
      "p",
      { class: "hint" },
      "Who is told when a job fails, when a task runs well again, and when a task or a connector goes stale.",
    ),
    h("section", { "aria-label": "Targets" }, h("h2", {}, "Targets"), targetTable(targets, reload), targetForm(reload)),
    h(
      "section",
      { "aria-label": "Rules" },
      h("h2", {}, "Rules"),
      ruleTable(rules, targets, ctx.cat, reload),
      ruleForm(ctx.cat.rules, ctx.cat, targets, reload),
    ),
    h("section", { "aria-label": "Deliveries" }, h("h2", {}, "Deliveries"), deliveryTable(deliveries, targets)),
  );
}
