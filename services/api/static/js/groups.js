// "Run on": the runner group of a task's jobs or of a connector's actions. The choices are
// the groups whose runners are live (GET /runner-groups); the default group's name comes
// from the api's rules (GET /rules).

import { get } from "./api.js";
import { field, h, plural, replace } from "./dom.js";
import { rules } from "./rules.js";

const capacity = (g) => `${plural(g.runners, "runner")}, ${plural(g.slots, "job")} at once`;

// A select of the live groups; `current` (a group name or null) stays offered even when
// none of its runners is live. `hint` says what the group serves.
export function runOnField(current, hint) {
  const select = h("select", {}, h("option", { value: "" }, "Default group"));
  const box = field("Run on", select, { name: "runner_group", hint });
  let loaded = false; // until then, the form keeps the group it was opened with
  Promise.all([rules(), get("/runner-groups").catch(() => [])]).then(([r, live]) => {
    const fallback = r.runner_groups.default;
    const byName = new Map(live.map((g) => [g.name, g]));
    const names = [...byName.keys()].filter((n) => n !== fallback);
    if (current && current !== fallback && !byName.has(current)) names.push(current);
    const dflt = byName.get(fallback);
    replace(
      select,
      h("option", { value: "" }, `Default group (${fallback}) — ${dflt ? capacity(dflt) : "no live runner"}`),
      names.sort().map((n) => {
        const g = byName.get(n);
        return h("option", { value: n }, `${n} — ${g ? capacity(g) : "no live runner"}`);
      }),
    );
    select.value = current && current !== fallback ? current : "";
    loaded = true;
  });
  return { el: box, value: () => (loaded ? select.value || null : (current ?? null)) };
}
