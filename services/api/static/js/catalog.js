// Connectors and tasks by id, to show names instead of UUIDs.

import { get } from "./api.js";
import { rules, taskKind } from "./rules.js";

export const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);

export class Catalog {
  // `r`: the api's rules (GET /rules), for the connectors each task type takes.
  constructor(connectors, tasks, r) {
    this.connectors = new Map(connectors.map((c) => [c.id, c]));
    this.tasks = new Map(tasks.map((t) => [t.id, t]));
    this.rules = r;
  }

  static async load() {
    const [connectors, tasks, r] = await Promise.all([get("/connectors"), get("/tasks"), rules()]);
    return new Catalog(connectors, tasks, r);
  }

  // Jobs may name tasks created since the page loaded (another tab, the API,
  // a script): re-read the catalog then, at most every few seconds.
  async know(jobs) {
    const unknown = jobs.some(
      (j) => !this.tasks.has(j.task_id) || j.connector_ids.some((c) => !this.connectors.has(c)),
    );
    if (!unknown || Date.now() - (this.loadedAt || 0) < 3000) return;
    this.loadedAt = Date.now();
    const fresh = await Catalog.load();
    this.connectors = fresh.connectors;
    this.tasks = fresh.tasks;
  }

  connectorName(id) {
    return this.connectors.get(id)?.name ?? `deleted connector ${id.slice(0, 8)}`;
  }

  byRole(role) {
    return [...this.connectors.values()].filter((c) => c.role === role).sort((a, b) => a.name.localeCompare(b.name));
  }

  // "web-01 → nas" for the connectors of a task, in the order of its type.
  route(task) {
    return (taskKind(this.rules, task.type)?.slots ?? [])
      .map((slot) => task[slot.field])
      .filter(Boolean)
      .map((id) => this.connectorName(id))
      .join(" → ");
  }

  // What tells a task apart next to its type: its name, or its connectors.
  taskLabel(id) {
    const task = this.tasks.get(id);
    if (!task) return "deleted task";
    return task.name || this.route(task);
  }

  taskTitle(taskOrId) {
    const task = typeof taskOrId === "string" ? this.tasks.get(taskOrId) : taskOrId;
    if (!task) return "deleted task";
    return task.name || `${capitalize(task.type)} ${this.route(task)}`;
  }
}
