// The api's rules (GET /rules): the connector kinds and the options each role takes,
// the task types and the connectors each takes, the states of a job. The UI keeps no
// copy of them: it asks once per page load, and every view shares the answer.

import { get } from "./api.js";

let cached = null;

export async function rules() {
  // A failed request is not kept: the next view asks again (after signing in, say).
  cached ??= get("/rules").catch((e) => {
    cached = null;
    throw e;
  });
  return cached;
}

// The task type `type` of the rules: its description and its connector slots.
export const taskKind = (r, type) => r.tasks.find((k) => k.type === type) ?? null;

// The states a job ends in.
export const terminalStates = (r) => new Set(r.job_states.filter((s) => s.terminal).map((s) => s.status));

// The states in which an operator may retry a job.
export const retryableStates = (r) => new Set(r.job_states.filter((s) => s.retryable).map((s) => s.status));
