// Connectors and tasks by id, to show names instead of UUIDs.

import { get } from "./api.js";

// Which connector each task type takes, in which field, with which role.
export const SLOTS = {
  backup: [
    ["source_id", "source", "Source"],
    ["store_id", "store", "Store"],
  ],
  restore: [
    ["store_id", "store", "Store"],
    ["destination_id", "destination", "Destination"],
  ],
  sync: [
    ["store_id", "store", "From store"],
    ["target_store_id", "store", "To store"],
  ],
  check: [["store_id", "store", "Store"]],
};

export const TYPES = {
  backup: "Back up a source to a store",
  restore: "Restore a store's snapshot to a destination",
  sync: "Copy snapshots from one store to another",
  check: "Verify the integrity of a store",
};

export const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);

export class Catalog {
  constructor(connectors, tasks) {
    this.connectors = new Map(connectors.map((c) => [c.id, c]));
    this.tasks = new Map(tasks.map((t) => [t.id, t]));
  }

  static async load() {
    const [connectors, tasks] = await Promise.all([get("/connectors"), get("/tasks")]);
    return new Catalog(connectors, tasks);
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
    return SLOTS[task.type]
      .map(([slot]) => task[slot])
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
