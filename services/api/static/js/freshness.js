// Freshness: how recent a task's or a connector's last successful job must be. The api
// judges it (`freshness_state`); the UI only shows what it says.

import { field, h, notice } from "./dom.js";

export function freshnessField(value, hint) {
  const input = h("input", { type: "text", placeholder: "e.g. 26h, 8d — empty: no rule", value: value ?? "" });
  return { el: field("Freshness", input, { name: "freshness", hint }), value: () => input.value.trim() || null };
}

// The red mark of something stale, beside its name.
export const staleBadge = (item) =>
  item.freshness_state === "stale"
    ? h("span", { class: "badge s-failed", title: `No successful job within ${item.freshness}` }, "stale")
    : null;

// The notice of a stale connector's or task's page.
export const staleNotice = (item, what) =>
  item.freshness_state === "stale"
    ? notice("error", `Stale: no successful job of this ${what} finished within ${item.freshness}.`)
    : null;
