// The audit trail: every change made through the api, newest first, with who made it and
// the fields it changed (secrets are masked by the api). Records are never edited here.

import { get, query } from "./api.js";
import { append, dataTable, h, replace, when } from "./dom.js";

// The fields whose values differ between before and after ("field: old → new").
function changes(before, after) {
  if (!before && !after) return [];
  const keys = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])];
  const shown = (v) => (v === undefined || v === null ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
  return keys
    .filter((k) => JSON.stringify(before?.[k]) !== JSON.stringify(after?.[k]))
    .filter((k) => !(before === null && (after?.[k] === null || after?.[k] === undefined)))
    .map((k) => h("div", { class: "change" }, h("b", {}, k), ": ", before ? `${shown(before[k])} → ` : "", shown(after?.[k])));
}

function recordRow(r) {
  return h(
    "tr",
    {},
    h("td", { title: r.at }, when(r.at)),
    h("td", {}, r.token_name, h("span", { class: "muted" }, ` · ${r.role}${r.via === "session" ? " · UI" : ""}`)),
    h("td", {}, h("span", { class: "tag" }, r.action)),
    h("td", { class: "mono" }, r.object_id ?? "—"),
    h("td", { class: "changes" }, changes(r.before, r.after)),
  );
}

export async function auditView(root, ctx) {
  const action = ctx.query.get("action") ?? "";
  const filter = h("input", { type: "search", placeholder: "e.g. task.run, job.cancel", value: action, "aria-label": "Action" });
  filter.addEventListener("change", () => ctx.go(`#/audit${query({ action: filter.value.trim() || null })}`));
  const table = dataTable("audit", ["When", "Who", "Action", "Object", "Changes"], []);
  const body = table.tBodies[0];
  const more = h("button", { type: "button", class: "ghost", hidden: true }, "Older");
  let cursor = null;
  const load = async () => {
    const page = await get(`/audit${query({ action: action || null, cursor, limit: 100 })}`);
    append(body, page.items.map(recordRow));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener("click", load);
  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "Audit")),
    h("p", { class: "hint" }, "Every change made through the API or this UI: who, when, what, and the fields it changed."),
    h("div", { class: "filters" }, filter),
    table,
    more,
  );
  await load();
  if (!body.children.length) replace(body, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "Nothing recorded.")));
}
