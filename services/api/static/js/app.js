// The shell: session, hash routing, sidebar, health.

import { ApiError, closeSession, get, openSession, whenUnauthorized } from "./api.js";
import { Catalog } from "./catalog.js";
import { connectorView, connectorsView, editConnectorView, newConnectorView } from "./connectors.js";
import { append, h, notice, plural, replace, tick } from "./dom.js";
import { jobInHash } from "./jobroute.js";
import { closeJob, openJob } from "./jobs.js";
import { auditView } from "./audit.js";
import { tokensView } from "./tokens.js";
import { notificationsView } from "./notifications.js";
import { snapshotView } from "./snapshot.js";
import { newTaskView, schedulingView, taskView } from "./tasks.js";

const ID = "([0-9a-fA-F-]{36})";
const ROUTES = [
  [/^\/connectors$/, connectorsView, "connectors"],
  [/^\/connectors\/new$/, newConnectorView, "connectors"],
  [new RegExp(`^/connectors/${ID}/edit$`), editConnectorView, "connectors"],
  [new RegExp(`^/connectors/${ID}/snapshots/([0-9a-fA-F]{4,64})$`), snapshotView, "connectors"],
  [new RegExp(`^/connectors/${ID}(?:/(dashboard|scheduling|snapshots))?$`), connectorView, "connectors"],
  [/^\/scheduling(?:\/(tasks|history))?$/, schedulingView, "scheduling"],
  [/^\/scheduling\/tasks\/new$/, newTaskView, "scheduling"],
  [new RegExp(`^/scheduling/tasks/${ID}$`), taskView, "scheduling"],
  [/^\/notifications$/, notificationsView, "notifications"],
  [/^\/audit$/, auditView, "audit"],
  [/^\/tokens$/, tokensView, "tokens"],
];
const HOME = "#/scheduling/history";

const main = document.getElementById("main");
let leaving = [];
// The page on screen, without the job popup's `?job=`: opening or closing the popup leaves it as it is.
let shownPage = null;

function leave() {
  for (const fn of leaving) fn();
  leaving = [];
  shownPage = null;
}

async function showJob(jobId) {
  if (jobId) openJob(jobId, await Catalog.load());
  else closeJob();
}

// Whether the session cookie was accepted (the api says so; scripts cannot read it).
let signedIn = false;

async function route() {
  const { page, job } = jobInHash(location.hash.slice(1) || "/");
  if (signedIn && page === shownPage) return showJob(job);
  leave();
  if (!signedIn) return signIn();
  document.body.classList.remove("signed-out");
  const [path, search = ""] = page.split("?");
  const q = new URLSearchParams(search);
  // #/jobs/ID: a link to one job opens its popup over the job history.
  const jobLink = path.match(new RegExp(`^/jobs/${ID}$`));
  if (jobLink) {
    history.replaceState(null, "", `${HOME}?job=${jobLink[1]}`);
    return route();
  }
  const match = ROUTES.map(([re, view, nav]) => [path.match(re), view, nav]).find(([m]) => m);
  if (!match) {
    if (path === "/" || path === "") location.replace(HOME);
    else replace(main, notice("error", `Nothing at ${page}. `, h("a", { href: HOME }, "Go to the job history")));
    return;
  }
  const [m, view, nav] = match;
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.setAttribute("aria-current", a.dataset.nav === nav ? "page" : "false");
  }
  const root = h("div", { class: "page" });
  replace(main, root);
  shownPage = page;
  showJob(job);
  let left = false;
  leaving.push(() => {
    left = true;
  });
  const ctx = {
    params: m.slice(1),
    query: q,
    go: (target) => {
      location.hash = target;
    },
    // The view changed what it shows in place (Job History's filters): the URL says so.
    restate: (target) => {
      history.replaceState(history.state, "", target);
      shownPage = jobInHash(target).page;
    },
    // A view's sockets and timers end when the user navigates away.
    onLeave: (fn) => (left ? fn() : leaving.push(fn)),
  };
  try {
    ctx.cat = await Catalog.load();
    await view(root, ctx);
    document.title = `${root.querySelector("h1")?.textContent || "Plakar"} · Plakar Control Plane`;
    if (!left && !main.contains(document.activeElement)) root.querySelector("h1")?.focus({ preventScroll: true });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    append(root, notice("error", e.message));
  }
}

function signIn(message) {
  leave();
  document.body.classList.add("signed-out");
  delete document.body.dataset.may;
  const input = h("input", {
    type: "password",
    id: "token",
    autocomplete: "current-password",
    required: true,
    spellcheck: "false",
  });
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Plakar Control Plane"),
    h("p", {}, "Sign in with the API token."),
    message ? notice("error", message) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { class: "hint" },
      "plakar-cp up prints a URL that signs you in; the token is also api_token in DATA_DIR/endpoints.json.",
    ),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      signedInAs(await openSession(input.value.trim()));
    } catch (err) {
      signIn(err.message);
      return;
    }
    route();
    health();
  });
  replace(main, form);
  input.focus();
}

// The session's token and role: what the pages offer follows the role (dom.js `may`).
function signedInAs(session) {
  signedIn = true;
  document.body.dataset.may = session.may.join(" ");
  const who = document.getElementById("signed-in-as");
  replace(who, `${session.token_name} · ${session.role}`);
}

whenUnauthorized(() => {
  signedIn = false;
  signIn("Your session ended, or the API token changed when the control plane restarted. Sign in again.");
});

async function health() {
  const el = document.getElementById("health");
  if (!signedIn) return;
  let hl;
  try {
    hl = await get("/health");
  } catch (e) {
    // 503 while degraded, with the same body.
    if (!(e instanceof ApiError && e.status === 503 && e.body)) {
      replace(el, h("div", { class: "health-title degraded" }, "API unreachable"));
      return;
    }
    hl = e.body;
  }
  const parts = [
    ["NATS", hl.nats],
    ["PostgreSQL", hl.postgres],
    [plural(hl.runners.length, "runner"), hl.runners.length > 0 && hl.runners_answer],
    ["history", hl.history.length > 0],
    ["scheduler", Boolean(hl.active_scheduler)],
  ];
  replace(
    el,
    h("div", { class: `health-title ${hl.status}` }, hl.status === "ok" ? "All services up" : "Degraded"),
    h(
      "ul",
      {},
      parts.map(([label, ok]) => h("li", { class: ok ? "ok" : "down" }, label)),
    ),
  );
}

document.getElementById("sign-out").addEventListener("click", async () => {
  await closeSession();
  signedIn = false;
  signIn();
});
window.addEventListener("hashchange", route);
setInterval(tick, 15000);
setInterval(health, 15000);

// `plakar-cp up` prints a URL with #token=…: it is traded for the session cookie at once,
// and leaves the address bar.
async function start() {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) {
    history.replaceState(null, "", `${location.pathname}${location.search}${HOME}`);
    try {
      await openSession(fromUrl);
    } catch (err) {
      signIn(err.message);
      return;
    }
  }
  try {
    signedInAs(await get("/session"));
  } catch {
    signedIn = false;
  }
  route();
  health();
}
start();
