// Jobs: live lists, the job details popup with its live output.

import { ApiError, get, post, socket, unavailableText } from "./api.js";
import {
  append,
  badge,
  busy,
  bytes,
  copyButton,
  duration,
  h,
  notice,
  plural,
  progressBar,
  replace,
  shortId,
  when,
  whenFull,
} from "./dom.js";
import { leaveJobUrl, showJobInUrl } from "./jobroute.js";
import { LogView } from "./logview.js";
import { batched, behind, coalesced, liveFeed, POLL_MS } from "./live.js";
import { retryableStates, rules, terminalStates } from "./rules.js";

function liveBadge() {
  const el = h("span", { class: "live", role: "status" }, "connecting…");
  const set = (mode) => {
    el.className = `live is-${mode}`;
    el.textContent = mode === "live" ? "live" : `updating every ${POLL_MS / 1000} s`;
    el.title = mode === "live" ? "Updates arrive as they happen" : "The live feed is unavailable; polling the API";
  };
  return { el, set };
}

function taskCell(job, cat) {
  return h(
    "div",
    { class: "job-title" },
    h("span", { class: "type" }, job.type),
    " ",
    h("span", {}, cat.taskLabel(job.task_id)),
  );
}

function statusCell(job) {
  const cell = h("div", { class: "status-cell" }, badge(job.status));
  if (job.status === "running") {
    const pct = job.progress?.percent;
    append(cell, [
      progressBar(job.progress, job.status),
      h("span", { class: "pct" }, pct == null ? "" : `${Math.floor(pct)}%`),
    ]);
  }
  return cell;
}

// Milliseconds from start to end (to now while it runs); null before it starts.
function elapsed(job) {
  if (!job.started_at) return null;
  return (job.finished_at ? new Date(job.finished_at) : new Date()) - new Date(job.started_at);
}

// The schedule in words ("Every 2 min"), or "manual", or "retry"; whether it retries a
// job; the try when it is not the first.
function triggerCell(job) {
  const scheduled = job.trigger === "schedule";
  return h(
    "td",
    { class: "trigger", title: scheduled && job.schedule_id ? `schedule ${job.schedule_id}` : null },
    scheduled ? (job.schedule_description ?? "schedule (deleted)") : job.trigger,
    job.retry_of && job.trigger !== "retry"
      ? h("span", { class: "muted", title: `retries job ${job.retry_of}` }, " · retry")
      : null,
    job.attempt > 1 ? h("span", { class: "muted" }, ` · try ${job.attempt}`) : null,
  );
}

// What the job wrote to its store, and how fast it read its source (backups of a
// local source; elsewhere the runner cannot count the bytes read).
function bytesCells(job) {
  const ms = elapsed(job);
  const read = job.progress?.bytes;
  const speed = read && ms > 0 ? `${bytes(read / (ms / 1000))}/s` : "—";
  return [
    h("td", { class: "num" }, job.bytes_added == null ? "—" : bytes(job.bytes_added)),
    h("td", { class: "num nowrap", title: read ? `${bytes(read)} read from the source` : null }, speed),
  ];
}

function jobRow(job, cat, flash) {
  const open = h(
    "button",
    { type: "button", class: "link", "aria-label": `Job ${shortId(job.id)} details` },
    shortId(job.id),
  );
  const row = h(
    "tr",
    { class: `job-row${flash ? " flash" : ""}`, dataset: { jobId: job.id } },
    h("td", {}, statusCell(job)),
    h(
      "td",
      {},
      taskCell(job, cat),
      job.error ? h("div", { class: `why ${job.status}`, title: job.error }, job.error) : null,
      job.reason ? h("div", { class: "why skipped", title: job.reason }, job.reason) : null,
      job.waiting ? h("div", { class: "why waiting", title: job.waiting }, `Waiting: ${job.waiting}`) : null,
    ),
    h("td", { class: "mono" }, open),
    triggerCell(job),
    h("td", { class: "nowrap" }, when(job.queued_at)),
    h("td", { class: "num nowrap" }, duration(elapsed(job))),
    bytesCells(job),
    h(
      "td",
      { class: "mono" },
      job.snapshot_url ? h("a", { href: job.snapshot_url, title: job.snapshot_id }, shortId(job.snapshot_id)) : "",
    ),
  );
  row.addEventListener("click", (e) => {
    if (!e.target.closest("a")) openJob(job.id, cat);
  });
  return row;
}

const signature = (job) =>
  JSON.stringify([
    job.status,
    job.progress,
    job.finished_at,
    job.snapshot_id,
    job.error,
    job.attempt,
    job.bytes_added,
    job.schedule_description,
    job.waiting,
  ]);

const COLUMNS = [
  ["Status"],
  ["Task"],
  ["Job"],
  ["Trigger"],
  ["Queued"],
  ["Duration", "From start to end"],
  ["Added", "Bytes the job wrote to its store: what a backup added to it"],
  ["Speed", "Bytes read from the source per second"],
  ["Snapshot"],
];

function jobTable(body) {
  return h(
    "table",
    { class: "jobs" },
    h(
      "thead",
      {},
      h("tr", {}, COLUMNS.map(([c, title]) => h("th", { scope: "col", title }, c))),
    ),
    body,
  );
}

// A running job's row shows its new progress, in place.
function showProgress(entry, progress, cat) {
  if (!entry || entry.job.status !== "running") return;
  const job = { ...entry.job, progress };
  const fresh = jobRow(job, cat, false);
  entry.row.replaceWith(fresh);
  Object.assign(entry, { row: fresh, job, sig: signature(job) });
}

// Progress events update a row in place; anything else refreshes the list, once per
// burst of events, and again while the rows lag behind the events (live.js).
function feedHandler(rows, cat, refresh, shownJob) {
  const batch = batched(async (events) => {
    await refresh();
    return behind(events, shownJob);
  });
  const onEvent = (ev) => {
    if (ev?.kind === "progress") showProgress(rows.get(ev.job_id), ev.progress, cat);
    else batch.poke(ev);
  };
  return { onEvent, stop: batch.stop };
}

// A table of jobs that keeps itself current: `load(limit, cursor)` answers
// {items, next_cursor}. Rows are reused by id so a refresh does not flicker.
export function jobList({ load, cat, empty = "No jobs yet.", flashId = null, toolbar = null, onLeave }) {
  const rows = new Map();
  const body = h("tbody");
  const more = h("button", { type: "button", class: "ghost", hidden: true }, "Load older jobs");
  const status = h("div", { class: "list-status" }, h("p", { class: "muted" }, "Loading jobs…"));
  const live = liveBadge();
  const wrap = h("div", { class: "table-wrap", hidden: true }, jobTable(body));
  let shown = 0;
  let cursor = null;

  const shownJobs = new Map(); // what the rows show, by id
  const render = (items, appendOnly) => {
    if (!appendOnly) {
      body.replaceChildren();
      shownJobs.clear();
    }
    for (const job of items) {
      shownJobs.set(job.id, job);
      const sig = signature(job);
      let entry = rows.get(job.id);
      if (!entry || entry.sig !== sig) {
        entry = { sig, row: jobRow(job, cat, job.id === flashId), job };
        rows.set(job.id, entry);
      }
      body.append(entry.row);
    }
    shown = body.children.length;
    wrap.hidden = !shown;
    replace(status, shown ? "" : h("p", { class: "empty" }, empty));
  };

  // A page of jobs: the newest (a refresh), or those after the last shown (older).
  const showPage = async (limit, from, appendOnly) => {
    const page = await load(limit, from);
    await cat.know(page.items);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    render(page.items, appendOnly);
  };
  const refresh = coalesced(async () => {
    try {
      await showPage(Math.max(shown, 50), null, false);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) replace(status, notice("error", e.message));
    }
  });
  more.addEventListener("click", () =>
    busy(more, async () => {
      try {
        await showPage(50, cursor, true);
      } catch (e) {
        replace(status, notice("error", e.message));
      }
    }),
  );

  const el = h(
    "div",
    { class: "job-list" },
    h("div", { class: "list-head" }, toolbar, live.el),
    wrap,
    status,
    h("div", { class: "more" }, more),
  );
  refresh();
  const feed = feedHandler(rows, cat, refresh, (id) => shownJobs.get(id));
  const stop = liveFeed(feed.onEvent, live.set);
  onLeave(() => {
    stop();
    feed.stop();
  });
  return el;
}

// The job details popup.

let shownJob = null;

// The open job is in the URL (jobroute.js): a reload keeps the popup, Back closes it.
export async function openJob(jobId, cat) {
  const dialog = document.getElementById("job-dialog");
  if (dialog.open && shownJob?.id === jobId) return; // the URL caught up with a click
  const r = await rules();
  shownJob?.stop();
  const view = new JobView(jobId, cat, r);
  shownJob = view;
  replace(dialog, view.el);
  dialog.onclose = () => {
    view.stop();
    document.body.classList.remove("job-open");
    leaveJobUrl(jobId);
  };
  showJobInUrl(jobId);
  document.body.classList.add("job-open"); // no animations meanwhile (app.css says why)
  if (!dialog.open) dialog.showModal();
  view.start();
}

export function closeJob() {
  document.getElementById("job-dialog").close();
}

// The popup shows the job as the api tells it (GET /jobs/{id}, then the stream's
// status messages): it never works out a job's state by itself.
class JobView {
  constructor(jobId, cat, r) {
    this.id = jobId;
    this.cat = cat;
    this.terminal = terminalStates(r);
    this.retryable = retryableStates(r);
    this.job = null;
    this.lastSeq = 0;
    this.stopped = false;
    this.ws = null;
    this.timer = null;
    this.streamWorked = false;

    this.title = h("h2", { id: "job-title" }, "Job ", h("span", { class: "mono" }, shortId(jobId)));
    this.badgeSlot = h("span");
    this.details = h("dl", { class: "details" });
    this.progress = h("div", { class: "job-progress" });
    this.message = h("div", { class: "job-message" });
    this.cancel = h(
      "button",
      { type: "button", class: "danger", hidden: true, dataset: { needs: "operator" }, onclick: () => this.doCancel() },
      "Cancel job",
    );
    this.retry = h(
      "button",
      {
        type: "button",
        class: "primary small",
        hidden: true,
        dataset: { needs: "operator" },
        onclick: () => this.doRetry(),
      },
      "Retry job",
    );
    this.liveState = h("span", { class: "live" });
    this.output = new LogView("Job output");
    this.el = this.layout();
  }

  layout() {
    const close = h(
      "button",
      { type: "button", class: "ghost close", "aria-label": "Close", onclick: () => this.close() },
      "✕",
    );
    return h(
      "div",
      { class: "job-view" },
      h("header", {}, h("div", { class: "job-heading" }, this.title, this.badgeSlot), this.retry, close),
      this.message,
      this.details,
      this.progress,
      h(
        "div",
        { class: "output-head" },
        h("h3", {}, "Output"),
        this.liveState,
        h("span", { class: "spacer" }),
        h(
          "a",
          { href: `/api/v1/jobs/${this.id}/output`, target: "_blank", rel: "noopener", class: "small" },
          "Full output (text)",
        ),
        this.cancel,
      ),
      this.output.el,
    );
  }

  close() {
    this.el.closest("dialog").close();
  }

  async start() {
    try {
      const job = await get(`/jobs/${this.id}`);
      await this.cat.know([job]);
      this.setJob(job);
    } catch (e) {
      replace(this.message, notice("error", e.message));
      return;
    }
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close();
    this.output.stop();
    this.asking?.close();
  }

  ended() {
    return this.terminal.has(this.job.status);
  }

  setJob(job) {
    this.job = job;
    replace(this.title, h("span", { class: "type" }, job.type), " ", this.cat.taskLabel(job.task_id));
    replace(this.badgeSlot, badge(job.status));
    this.cancel.hidden = this.ended();
    this.retry.hidden = !this.retryable.has(job.status) || Boolean(job.retried_by);
    if (this.ended()) this.asking?.close(); // nothing left to cancel
    replace(this.details, this.detailRows(job));
    replace(
      this.message,
      job.error ? notice(job.status === "failed" ? "error" : "warn", job.error) : null,
      job.reason ? notice("warn", `Skipped: ${job.reason}`) : null,
      job.waiting ? notice("warn", `Waiting: ${job.waiting}`) : null,
    );
    this.setProgress(job.progress);
  }

  // A link to another page: following it closes the popup.
  linkOut(attrs, text) {
    return h("a", { ...attrs, onclick: () => this.close() }, text);
  }

  // Another job of the chain of retries: opened in this popup.
  jobLink(jobId) {
    return h(
      "button",
      { type: "button", class: "link mono", onclick: () => openJob(jobId, this.cat) },
      `Job ${shortId(jobId)}`,
    );
  }

  snapshotCell(job) {
    if (job.snapshot_url) {
      return this.linkOut({ href: job.snapshot_url, class: "mono snapshot-link" }, job.snapshot_id);
    }
    return h("span", { class: "muted" }, job.type === "backup" && !this.ended() ? "when the backup ends" : "—");
  }

  // A prune's kept snapshots (links to them in its store) or deleted ones (gone).
  snapshotIds(job, ids, linked) {
    const store = job.connector_ids[0];
    return [
      plural(ids.length, "snapshot"),
      ids.length ? ": " : "",
      ids.map((id, i) => [
        i ? ", " : "",
        linked && store
          ? this.linkOut({ href: `#/connectors/${store}/snapshots/${id}`, class: "mono", title: id }, shortId(id))
          : h("span", { class: "mono", title: id }, shortId(id)),
      ]),
    ];
  }

  detailRows(job) {
    const cat = this.cat;
    const started = job.started_at ? new Date(job.started_at) : null;
    const ended = job.finished_at ? new Date(job.finished_at) : null;
    const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
    return [
      row("Job ID", h("span", { class: "mono" }, job.id), " ", copyButton(job.id)),
      row(
        "Status",
        badge(job.status),
        job.exit_code != null ? h("span", { class: "muted" }, ` exit code ${job.exit_code}`) : "",
      ),
      row("Snapshot", this.snapshotCell(job)),
      row("Task", this.linkOut({ href: `#/scheduling/tasks/${job.task_id}` }, cat.taskTitle(job.task_id))),
      row(
        "Connectors",
        job.connector_ids.map((id, i) => [
          i ? ", " : "",
          this.linkOut({ href: `#/connectors/${id}` }, cat.connectorName(id)),
        ]),
      ),
      row(
        "Trigger",
        job.trigger,
        job.schedule_id
          ? h("span", { class: "muted", title: `schedule ${job.schedule_id}` }, ` · ${job.schedule_description ?? "schedule (deleted)"}`)
          : "",
      ),
      job.prune ? row("Kept", this.snapshotIds(job, job.prune.kept, true)) : [],
      job.prune ? row("Deleted", this.snapshotIds(job, job.prune.deleted, false)) : [],
      job.requested_by ? row("Requested by", job.requested_by) : [],
      job.retry_of ? row("Retry of", this.jobLink(job.retry_of)) : [],
      job.retried_by ? row("Retried by", this.jobLink(job.retried_by)) : [],
      row("Due", whenFull(job.due_at)),
      row("Started", whenFull(job.started_at)),
      row("Finished", whenFull(job.finished_at)),
      row("Took", started ? duration((ended || new Date()) - started) : "—"),
      row("Runner", job.runner || "—", job.attempt ? h("span", { class: "muted" }, ` · attempt ${job.attempt}`) : ""),
      row("Concurrency", job.concurrency ?? h("span", { class: "muted" }, "set by the runner when it starts")),
    ];
  }

  setProgress(p) {
    const job = this.job;
    const parts = [];
    if (p?.percent != null) parts.push(`${Math.floor(p.percent)}%`);
    if (p?.files) parts.push(`${p.files.toLocaleString("en")} files`);
    if (p?.bytes) parts.push(bytes(p.bytes));
    replace(
      this.progress,
      h(
        "div",
        { class: "progress-line" },
        progressBar(p, job.status),
        h("span", { class: "muted" }, parts.join(" · ") || (job.status === "queued" ? "waiting for a runner" : "")),
      ),
    );
  }

  // Output: WS /jobs/{id}/stream?after=SEQ, resumed after the last line seen, its lines
  // in batches (one message per batch of the runner, not per line);
  // polls GET /jobs/{id} and /output when the stream is not available.
  connect() {
    if (this.stopped) return;
    let opened = false;
    const ws = socket(`/jobs/${this.id}/stream`, { after: this.lastSeq, batch: 1 });
    this.ws = ws;
    this.setLive("connecting");
    ws.onopen = () => {
      opened = true;
      this.streamWorked = true;
      this.setLive(this.ended() ? "" : "live");
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.onMessage(msg);
    };
    ws.onclose = (e) => {
      if (this.stopped || this.ws !== ws) return;
      if (e.code >= 4000) {
        // The api refused the stream and said why (4404: no such job).
        this.setLive("");
        replace(this.message, notice("error", e.reason || `the output stream closed (${e.code})`));
        return;
      }
      if (this.ended() && opened) {
        this.setLive("");
        return;
      }
      if (this.streamWorked) {
        this.timer = setTimeout(() => this.connect(), 1000); // resume after the last seq
      } else {
        this.poll();
      }
    };
  }

  onMessage(msg) {
    if (msg.type === "lines") {
      const fresh = msg.lines.filter((l) => l.seq > this.lastSeq);
      if (fresh.length) {
        this.lastSeq = fresh.at(-1).seq;
        this.appendLines(fresh);
      }
    } else if (msg.type === "progress") {
      // Progress only: the job's state changes with the status messages.
      this.job = { ...this.job, progress: msg.progress };
      this.setProgress(msg.progress);
    } else if (msg.type === "dropped") {
      // The connection fell behind and the api dropped lines rather than slow the job.
      this.lastSeq = Math.max(this.lastSeq, msg.last_seq);
      this.appendLines([
        {
          stream: "system",
          line: `… ${msg.count} lines skipped here (too slow a connection); the full output has them`,
        },
      ]);
    } else if (msg.type === "status" && msg.job) {
      this.setJob(msg.job);
      if (this.ended()) this.setLive("");
    }
  }

  appendLines(lines) {
    this.output.append(lines);
  }

  setLive(mode) {
    this.liveState.className = `live is-${mode}`;
    this.liveState.textContent = { live: "live", connecting: "connecting…", polling: "updating every 2 s" }[mode] || "";
  }

  async poll() {
    this.setLive(this.ended() ? "" : "polling");
    try {
      const [job, text] = await Promise.all([get(`/jobs/${this.id}`), get(`/jobs/${this.id}/output`)]);
      const lines = text.split("\n");
      if (lines.at(-1) === "") lines.pop();
      // The text has no seq nor stream: lastSeq counts the lines shown.
      const fresh = lines.slice(this.lastSeq).map((line) => ({ line, stream: "plakar" }));
      this.lastSeq = lines.length;
      this.appendLines(fresh);
      this.setJob(job);
      if (this.ended()) {
        this.setLive("");
        return;
      }
    } catch (e) {
      replace(this.message, notice("error", e.message));
    }
    if (!this.stopped) this.timer = setTimeout(() => this.poll(), 2000);
  }

  // Asks in a dialog of its own, whose buttons say what they do; Esc keeps the job.
  confirmCancel() {
    const keep = h("button", { type: "button", class: "ghost", autofocus: true }, "Keep running");
    const yes = h("button", { type: "button", class: "danger" }, "Cancel job");
    const ask = h(
      "dialog",
      {
        class: "confirm",
        role: "alertdialog",
        "aria-labelledby": "cancel-title",
        "aria-describedby": "cancel-text",
      },
      h("h3", { id: "cancel-title" }, "Cancel this job?"),
      h("p", { id: "cancel-text" }, "plakar gets SIGINT, then SIGKILL after a grace period."),
      h("div", { class: "actions" }, keep, yes),
    );
    keep.addEventListener("click", () => ask.close("keep"));
    yes.addEventListener("click", () => ask.close("cancel"));
    this.asking = ask;
    this.el.append(ask);
    ask.showModal();
    return new Promise((resolve) => {
      ask.addEventListener("close", () => {
        ask.remove();
        this.asking = null;
        resolve(ask.returnValue === "cancel");
      });
    });
  }

  // A new job of the task, as the task is now, linked to this one; shown at once.
  async doRetry() {
    await busy(this.retry, async () => {
      try {
        const answer = await post(`/jobs/${this.id}/retry`);
        await openJob(answer.job_id, this.cat);
      } catch (e) {
        replace(this.message, notice("error", e.unavailable ? unavailableText("Retrying a job") : e.message));
      }
    });
  }

  async doCancel() {
    if (!(await this.confirmCancel())) return;
    await busy(this.cancel, async () => {
      try {
        const answer = await post(`/jobs/${this.id}/cancel`, { by: "web UI" });
        const text =
          answer.status === "cancelled"
            ? "Cancelled before it started."
            : "Cancel requested: plakar gets SIGINT, then SIGKILL after a grace period.";
        replace(this.message, notice("warn", text));
        this.cancel.hidden = true;
      } catch (e) {
        replace(this.message, notice("error", e.unavailable ? unavailableText("Cancelling a job") : e.message));
      }
    });
  }
}
