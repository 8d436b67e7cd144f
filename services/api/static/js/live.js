// Views that follow the event stream (WS /events): a burst of events costs one request,
// and an answer that lags behind the events it follows is asked for again.

import { socket } from "./api.js";

export const POLL_MS = 5000;
// What changes a job list; log events (the bulk of the feed) do not.
export const JOB_KINDS = "queued,skipped,started,progress,finished";
// What changes a task's facts (its last job, its schedules' next and last runs).
export const FACT_KINDS = "queued,skipped,started,finished,fired,changed";
const BURST_MS = 300;
const LAG_RETRY_MS = 1000;
const LAG_TRIES = 5;

// Events of `kinds` as they happen; polls (onEvent(null)) when the socket is not
// available, and tries the socket again now and then.
export function liveFeed(onEvent, onMode, kinds = JOB_KINDS) {
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
    ws = socket("/events", { kinds });
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

// Runs `fn` one call at a time: calls while it runs make one more run after it.
export function coalesced(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = fn();
    try {
      await running;
    } finally {
      running = null;
    }
    if (again) {
      again = false;
      await run();
    }
  };
  return run;
}

// `refresh(events)` once per burst of events (and never two at once). When it answers
// true, what it read lags behind those events (the history records an event a moment
// after the feed carries it): it runs again a little later, a few times at most.
export function batched(refresh) {
  let events = [];
  let timer = null;
  let stopped = false;
  const lags = (seen) => Promise.resolve(refresh(seen)).catch(() => false);
  const run = coalesced(async () => {
    const seen = events;
    events = [];
    for (let tries = 0; !stopped && (await lags(seen)) && tries < LAG_TRIES; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, LAG_RETRY_MS));
    }
  });
  const poke = (ev) => {
    if (ev) events.push(ev);
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = null;
      run();
    }, BURST_MS);
  };
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  return { poke, stop };
}

const rank = (status) => ({ queued: 0, running: 1 })[status] ?? 2;

// Whether jobs as read (`jobOf(id)`) lag behind job events: a job shown queued that
// started, or shown active that finished; with `expects(ev)`, a queued job not listed yet.
export function behind(events, jobOf, expects = () => false) {
  return events.some((ev) => {
    const job = jobOf(ev.job_id);
    if (ev.kind === "queued" || ev.kind === "skipped") return !job && expects(ev);
    if (!job) return false;
    if (ev.kind === "started") return rank(job.status) < 1;
    return ev.kind === "finished" && rank(job.status) < 2;
  });
}

// Facts that follow the stream: `refresh(events)` after each burst of events of `kinds`
// that `wanted` keeps, and whenever the socket (re)opens or polls.
export function liveRefresh({ kinds = FACT_KINDS, refresh, wanted = () => true, onLeave, onMode = () => {} }) {
  const batch = batched(refresh);
  const stop = liveFeed((ev) => (ev === null || wanted(ev) ? batch.poke(ev) : null), onMode, kinds);
  onLeave(() => {
    stop();
    batch.stop();
  });
}
