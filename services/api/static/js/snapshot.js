// A snapshot: its details and its files, one directory at a time.

import { get, query, unavailableText } from "./api.js";
import { append, bytes, copyButton, h, notice, replace, shortId, utc, when } from "./dom.js";

const isDir = (e) => e.type === "directory";

function snapshotHead(storeId, snapshotId, store) {
  return [
    h(
      "div",
      { class: "crumbs" },
      h("a", { href: "#/connectors" }, "Connectors"),
      " › ",
      h("a", { href: `#/connectors/${storeId}/snapshots` }, store ? store.name : "store"),
      " › Snapshot",
    ),
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: -1 }, "Snapshot ", h("span", { class: "mono" }, shortId(snapshotId))),
      h("span", { class: "spacer" }),
      h(
        "a",
        { href: `#/scheduling/tasks/new?type=restore&store_id=${storeId}&snapshot_id=${snapshotId}`, class: "button" },
        "Restore…",
      ),
    ),
  ];
}

// The snapshot as the store lists it; null (and said so in `el`) when it is not there.
async function showDetails(el, storeId, snapshotId, store) {
  let s;
  try {
    const all = await get(`/connectors/${storeId}/snapshots`);
    s = all.find((x) => x.id.startsWith(snapshotId));
  } catch (e) {
    replace(el, notice("error", `Could not read the snapshot: ${e.message}`));
    return null;
  }
  if (!s) {
    replace(el, notice("warn", `No snapshot ${snapshotId} in this store: it may have been removed.`));
    return null;
  }
  const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
  replace(
    el,
    h(
      "dl",
      { class: "details" },
      row("ID", h("span", { class: "mono" }, s.id), " ", copyButton(s.id)),
      row("Created", utc(s.created_at), " ", h("span", { class: "muted" }, "(", when(s.created_at), ")")),
      row(
        "Tags",
        s.tags.length ? s.tags.map((t) => h("span", { class: "tag" }, t)) : h("span", { class: "muted" }, "none"),
      ),
      row("Size", bytes(s.size)),
      row("Root", h("span", { class: "mono" }, s.root)),
      row("Store", store ? h("a", { href: `#/connectors/${storeId}` }, store.name) : storeId),
    ),
  );
  return s;
}

// `/`, then a link per directory down to `parts`.
function pathCrumbs(parts, href) {
  return h(
    "nav",
    { class: "path", "aria-label": "Directory" },
    h("a", { href: href("/") }, "/"),
    parts.map((p, i) => [
      i ? h("span", { class: "sep" }, "/") : null,
      h("a", { href: href(`/${parts.slice(0, i + 1).join("/")}`) }, p),
    ]),
  );
}

function fileRow(e, here, href) {
  const child = `${here.replace(/\/$/, "")}/${e.name}`;
  return h(
    "tr",
    {},
    h(
      "td",
      { class: "mono" },
      isDir(e) ? h("a", { href: href(child), class: "dir" }, `${e.name}/`) : e.name,
      e.target ? h("span", { class: "muted" }, ` → ${e.target}`) : null,
    ),
    h("td", { class: "num" }, e.type === "file" ? bytes(e.size) : ""),
    h("td", { class: "nowrap" }, utc(e.modified_at)),
    h("td", { class: "mono muted" }, e.mode),
  );
}

// A directory's entries, directories first; a link up unless it is the top.
function filesTable(entries, here, parts, href) {
  const parent = parts.length
    ? h(
        "tr",
        {},
        h("td", { colspan: 4 }, h("a", { href: href(`/${parts.slice(0, -1).join("/")}`) }, "↑ parent directory")),
      )
    : null;
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "files" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Size", "Modified", "Mode"].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h("tbody", {}, parent, entries.map((e) => fileRow(e, here, href))),
    ),
  );
}

async function showFiles(el, storeId, snapshotId, path, href) {
  let answer;
  try {
    answer = await get(`/connectors/${storeId}/snapshots/${snapshotId}/files${query({ path })}`);
  } catch (e) {
    replace(
      el,
      notice(
        e.unavailable ? "info" : "error",
        e.unavailable ? unavailableText("Browsing a snapshot's files") : e.message,
      ),
    );
    return;
  }
  const here = answer.path;
  const parts = here.split("/").filter(Boolean);
  const entries = answer.entries.sort((a, b) => isDir(b) - isDir(a) || a.name.localeCompare(b.name));
  replace(
    el,
    pathCrumbs(parts, href),
    entries.length ? filesTable(entries, here, parts, href) : h("p", { class: "empty" }, "This directory is empty."),
  );
}

export async function snapshotView(root, ctx) {
  const [storeId, snapshotId] = ctx.params;
  const href = (p) => `#/connectors/${storeId}/snapshots/${snapshotId}${query({ path: p })}`;
  const store = ctx.cat.connectors.get(storeId);
  const details = h(
    "div",
    {},
    h("p", { class: "muted", role: "status" }, "Loading the snapshot… (a runner is asked to run plakar)"),
  );
  const files = h("div", {}, h("p", { class: "muted", role: "status" }, "Listing files…"));
  append(
    root,
    snapshotHead(storeId, snapshotId, store),
    h("section", { class: "card" }, details),
    h("section", { class: "card" }, h("h2", {}, "Files"), files),
  );
  const showDir = (path) => showFiles(files, storeId, snapshotId, path, href);
  // Without a path the listing opens where the backup started (the snapshot's root).
  const path = ctx.query.get("path");
  if (path) await Promise.all([showDetails(details, storeId, snapshotId, store), showDir(path)]);
  else await showDir((await showDetails(details, storeId, snapshotId, store))?.root || "/");
}
