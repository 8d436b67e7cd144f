// The prune task's own fields: its retention counts (the api's rules list them), and
// the preview of what it would keep and delete (POST /tasks/preview). It is saved only
// with the operator's confirmation of what the preview showed; a change of its store,
// labels or counts asks for a new look.

import { get, post } from "./api.js";
import { capitalize } from "./catalog.js";
import { busy, field, h, notice, plural, replace, shortId, utc } from "./dom.js";

const COUNT_LABELS = {
  days: "Days",
  per_hour: "Per hour",
  per_day: "Per day",
  per_week: "Per week",
  per_month: "Per month",
  per_year: "Per year",
};

// The store's snapshots by id, to show when each was made (none when it cannot tell).
async function snapshotsOf(storeId) {
  try {
    return new Map((await get(`/connectors/${storeId}/snapshots`)).map((s) => [s.id, s]));
  } catch {
    return new Map();
  }
}

function planList(ids, known) {
  if (!ids.length) return h("p", { class: "muted" }, "none");
  return h(
    "ul",
    { class: "plan-ids" },
    ids.map((id) => {
      const s = known.get(id);
      const about = s ? ` · ${utc(s.created_at)}${s.tags.length ? ` · ${s.tags.join(", ")}` : ""}` : "";
      return h("li", { title: id }, h("span", { class: "mono" }, shortId(id)), about);
    }),
  );
}

// `r`: the api's rules; `task`: the task edited (null: a new one).
export function pruneOptions(r, task) {
  const inputs = {};
  const counts = r.retention.counts.map(({ key, help }) => {
    const input = h("input", {
      type: "number",
      min: 1,
      max: r.retention.max,
      step: 1,
      inputmode: "numeric",
      placeholder: "—",
      value: task?.retention?.[key] ?? "",
    });
    inputs[key] = input;
    return field(COUNT_LABELS[key] ?? key, input, { name: `retention.${key}`, hint: `${capitalize(help)}.` });
  });
  const result = h("div", { class: "prune-plan", "aria-live": "polite" });
  const confirm = h("input", { type: "checkbox", name: "confirm", disabled: true });
  const previewButton = h("button", { type: "button", class: "ghost" }, "Preview");
  const el = h(
    "fieldset",
    { class: "card prune-options", dataset: { fieldBox: "retention" } },
    h("legend", {}, "Retention"),
    h(
      "p",
      { class: "hint" },
      "A snapshot any count keeps is kept; the other snapshots carrying all the labels are deleted. " +
        "Snapshots without the labels are left alone.",
    ),
    h("div", { class: "grid3" }, counts),
    h("div", { class: "actions" }, previewButton),
    result,
    h(
      "div",
      { class: "field check", dataset: { fieldBox: "confirm" } },
      h("label", {}, confirm, "I have looked at what it deletes: delete such snapshots each time it runs"),
    ),
  );
  const retention = () => {
    const out = {};
    for (const [key, input] of Object.entries(inputs)) if (input.value !== "") out[key] = Number(input.value);
    return out;
  };
  // Anything that changes what it deletes: the preview shown no longer tells.
  const stale = () => {
    confirm.checked = false;
    confirm.disabled = true;
    replace(result, h("p", { class: "hint" }, "Preview it to see which snapshots it keeps and deletes now."));
  };
  for (const input of Object.values(inputs)) input.addEventListener("input", stale);
  stale();
  // The body the form would send, set by the form.
  let bodyOf = () => ({});
  previewButton.addEventListener("click", () =>
    busy(previewButton, async () => {
      const body = bodyOf();
      try {
        const [plan, known] = await Promise.all([post("/tasks/preview", body), snapshotsOf(body.store_id)]);
        replace(
          result,
          h(
            "div",
            { class: "grid2" },
            h("div", {}, h("h4", {}, `Keeps ${plural(plan.keep.length, "snapshot")}`), planList(plan.keep, known)),
            h(
              "div",
              {},
              h("h4", {}, `Deletes ${plural(plan.delete.length, "snapshot")}`),
              planList(plan.delete, known),
            ),
          ),
        );
        confirm.disabled = false;
      } catch (err) {
        replace(result, notice("error", err.field ? `${err.field}: ${err.message}` : err.message));
      }
    }),
  );
  return {
    el,
    stale,
    previewWith: (fn) => (bodyOf = fn),
    body: () => ({ retention: retention(), confirm: confirm.checked }),
  };
}
