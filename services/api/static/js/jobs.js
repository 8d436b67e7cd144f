// Jobs: live lists, the job details popup with its live output.

import { ApiError, get, post, query, socket, unavailableText } from "./api.js";
import {
  append,
  badge,
  busy,
  bytes,
  copyButton,
  duration,
  h,
  notice,
  progressBar,
  replace,
  shortId,
  utc,
  when,
  whenFull,
} from "./dom.js";
import { rules, terminalStates } from "./rules.js";

const POLL_MS = 5000;
// What changes a job row; log events (the bulk of the feed) do not.
const FEED_KINDS = "queued,skipped,started,progress,finished";
const MAX_LINES = 20000; // beyond this the popup keeps the tail; the full text is one click away

// Job events as they happen over WS /events; polls when the socket is not
// available, and tries the socket again now and then.
export function liveFeed(onEvent, onMode) {
  let ws = null;
  let pollTimer = null;
  let retryTimer = null;
  let stopped = false;
  const startPolling = () => {
    if (pollTimer) return;
    pollTimer = setInterval(() => onEvent(null), POLL_MS);
    onMode("polling");
  };
  const connect = () => {
    let opened = false;
    ws = socket("/events", { kinds: FEED_KINDS });
    ws.onopen = () => {
      opened = true;
      clearInterval(pollTimer);
      pollTimer = null;
      onMode("live");
      onEvent(null); // whatever happened while the socket was down
    };
    ws.onmessage = (e) => {
      try {
        onEvent(JSON.parse(e.data));
      } catch {
        onEvent(null);
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      startPolling();
      retryTimer = setTimeout(connect, opened ? 2000 : 30000);
    };
  };
  connect();
  return () => {
    stopped = true;
    clearInterval(pollTimer);
    clearTimeout(retryTimer);
    ws?.close();
  };
}

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

function tookCell(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return duration(end - new Date(job.started_at));
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
    ),
    h("td", { class: "mono" }, open),
    h("td", {}, job.trigger, job.attempt > 1 ? h("span", { class: "muted" }, ` · try ${job.attempt}`) : null),
    h("td", { class: "nowrap" }, when(job.queued_at)),
    h("td", { class: "num" }, tookCell(job)),
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
  JSON.stringify([job.status, job.progress, job.finished_at, job.snapshot_id, job.error, job.attempt]);

function jobTable(body) {
  return h(
    "table",
    { class: "jobs" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Status", "Task", "Job", "Trigger", "Queued", "Took", "Snapshot"].map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    body,
  );
}

// Runs `fn` one call at a time: calls while it runs make one more run after it.
function coalesced(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = fn();
    await running;
    running = null;
    if (again) {
      again = false;
      await run();
    }
  };
  return run;
}

// A running job's row shows its new progress, in place.
function showProgress(entry, progress, cat) {
  if (!entry || entry.job.status !== "running") return;
  const job = { ...entry.job, progress };
  const fresh = jobRow(job, cat, false);
  entry.row.replaceWith(fresh);
  Object.assign(entry, { row: fresh, job, sig: signature(job) });
}

// Progress events update a row in place; anything else refreshes the list
// (coalesced, so a burst of events costs one request).
function feedHandler(rows, cat, refresh) {
  let pending = null;
  const onEvent = (ev) => {
    if (ev?.kind === "progress") {
      showProgress(rows.get(ev.job_id), ev.progress, cat);
      return;
    }
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      refresh();
    }, 300);
  };
  return { onEvent, stop: () => clearTimeout(pending) };
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

  const render = (items, appendOnly) => {
    if (!appendOnly) body.replaceChildren();
    for (const job of items) {
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
  const feed = feedHandler(rows, cat, refresh);
  const stop = liveFeed(feed.onEvent, live.set);
  onLeave(() => {
    stop();
    feed.stop();
  });
  return el;
}

// The job details popup.

let shownJob = null;

export async function openJob(jobId, cat) {
  const r = await rules();
  const dialog = document.getElementById("job-dialog");
  shownJob?.stop();
  const view = new JobView(jobId, cat, r);
  shownJob = view;
  replace(dialog, view.el);
  dialog.addEventListener("close", () => view.stop(), { once: true });
  if (!dialog.open) dialog.showModal();
  view.start();
}

// The popup shows the job as the api tells it (GET /jobs/{id}, then the stream's
// status messages): it never works out a job's state by itself.
class JobView {
  constructor(jobId, cat, r) {
    this.id = jobId;
    this.cat = cat;
    this.terminal = terminalStates(r);
    this.job = null;
    this.lastSeq = 0;
    this.lines = 0;
    this.follow = true;
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
      { type: "button", class: "danger", hidden: true, onclick: () => this.doCancel() },
      "Cancel job",
    );
    this.liveState = h("span", { class: "live" });
    this.buildOutput();
    this.el = this.layout();
  }

  // The output pane follows the end of the output until the user scrolls up.
  buildOutput() {
    this.output = h("div", {
      class: "output",
      role: "log",
      "aria-label": "Job output",
      tabindex: 0,
    });
    this.followButton = h(
      "button",
      { type: "button", class: "follow small", hidden: true, onclick: () => this.scrollToEnd(true) },
      "↓ Follow output",
    );
    this.output.addEventListener("scroll", () => {
      const atEnd = this.output.scrollTop + this.output.clientHeight >= this.output.scrollHeight - 24;
      this.follow = atEnd;
      if (atEnd) this.followButton.hidden = true;
    });
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
      h("header", {}, h("div", { class: "job-heading" }, this.title, this.badgeSlot), close),
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
      h("div", { class: "output-wrap" }, this.output, this.followButton),
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
  }

  ended() {
    return this.terminal.has(this.job.status);
  }

  setJob(job) {
    this.job = job;
    replace(this.title, h("span", { class: "type" }, job.type), " ", this.cat.taskLabel(job.task_id));
    replace(this.badgeSlot, badge(job.status));
    this.cancel.hidden = this.ended();
    replace(this.details, this.detailRows(job));
    replace(
      this.message,
      job.error ? notice(job.status === "failed" ? "error" : "warn", job.error) : null,
      job.reason ? notice("warn", `Skipped: ${job.reason}`) : null,
    );
    this.setProgress(job.progress);
  }

  // A link to another page: following it closes the popup.
  linkOut(attrs, text) {
    return h("a", { ...attrs, onclick: () => this.close() }, text);
  }

  snapshotCell(job) {
    if (job.snapshot_url) {
      return this.linkOut({ href: job.snapshot_url, class: "mono snapshot-link" }, job.snapshot_id);
    }
    return h("span", { class: "muted" }, job.type === "backup" && !this.ended() ? "when the backup ends" : "—");
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
        job.schedule_id ? h("span", { class: "muted" }, ` · schedule ${shortId(job.schedule_id)}`) : "",
      ),
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

  // Output: WS /jobs/{id}/stream?after=SEQ, resumed after the last line seen;
  // polls GET /jobs/{id} and /output when the stream is not available.
  connect() {
    if (this.stopped) return;
    let opened = false;
    const ws = socket(`/jobs/${this.id}/stream`, { after: this.lastSeq });
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
    if (msg.type === "log") {
      if (msg.seq > this.lastSeq) {
        this.lastSeq = msg.seq;
        this.appendLines([msg]);
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
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      frag.append(
        h(
          "div",
          { class: l.stream === "system" ? "line sys" : "line", title: l.ts ? utc(l.ts) : null },
          l.line === "" ? " " : l.line,
        ),
      );
    }
    this.output.append(frag);
    this.lines += lines.length;
    while (this.lines > MAX_LINES) {
      this.output.firstElementChild.remove();
      this.lines -= 1;
    }
    if (this.follow) this.scrollToEnd(false);
    else this.followButton.hidden = false;
  }

  scrollToEnd(force) {
    if (force) this.follow = true;
    this.output.scrollTop = this.output.scrollHeight;
    this.followButton.hidden = true;
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

  async doCancel() {
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

// Job History: every job, filtered by status (the states of the api's rules), kept live.
export async function historyView(root, { query: q, cat, onLeave, flashId }) {
  const states = (await rules()).job_states;
  const status = states.some((s) => s.status === q.get("status")) ? q.get("status") : "";
  const filters = h(
    "nav",
    { class: "filters", "aria-label": "Filter by status" },
    [{ status: "", label: "All" }, ...states].map(({ status: s, label }) =>
      h(
        "a",
        {
          href: `#/scheduling/history${s ? `?status=${s}` : ""}`,
          class: `chip${s ? ` s-${s}` : ""}${s === status ? " active" : ""}`,
          "aria-current": s === status ? "true" : null,
        },
        label,
      ),
    ),
  );
  const list = jobList({
    load: (limit, cursor) => get(`/jobs${query({ status, limit, cursor })}`),
    cat,
    empty: status ? `No ${status} jobs.` : "No jobs yet. Save a task to run it once, or attach a schedule.",
    flashId,
    toolbar: filters,
    onLeave,
  });
  append(root, list);
}
