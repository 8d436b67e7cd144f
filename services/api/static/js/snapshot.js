// A snapshot: its details and its files, one directory at a time, each file to preview
// or download, each folder or file to restore.

import { apiHref, get, query, unavailableText } from "./api.js";
import { append, bytes, copyButton, h, nextId, notice, replace, shortId, utc, when } from "./dom.js";

const isDir = (e) => e.type === "directory";

// Directories first, then names as people count (f1, f2, f10, f100); code points last,
// so that the order is total.
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const byName = (a, b) =>
  isDir(b) - isDir(a) || collator.compare(a.name, b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

// Where the browser's links go, for one snapshot.
function places(storeId, snapshotId) {
  const base = `/connectors/${storeId}/snapshots/${snapshotId}`;
  return {
    dir: (path) => `#${base}${query({ path })}`,
    files: (path) => `${base}/files${query({ path })}`,
    download: (path) => apiHref(`${base}/download${query({ path })}`),
    preview: (path) => `${base}/preview${query({ path })}`,
    // A restore task's form, for this snapshot and this folder (or file) of it.
    restore: (path) =>
      `#/scheduling/tasks/new${query({ type: "restore", store_id: storeId, snapshot_id: snapshotId, restore_path: path })}`,
  };
}

function snapshotHead(storeId, snapshotId, store, at) {
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
      h("a", { href: at.restore(), class: "button" }, "Restore the snapshot…"),
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

// `at`: places(); `preview(entry, path)` opens a file's preview.
function fileRow(e, here, at, preview) {
  const child = `${here.replace(/\/$/, "")}/${e.name}`;
  const file = e.type === "file";
  return h(
    "tr",
    {},
    h(
      "td",
      { class: "mono" },
      isDir(e) ? h("a", { href: at.dir(child), class: "dir" }, `${e.name}/`) : e.name,
      e.target ? h("span", { class: "muted" }, ` → ${e.target}`) : null,
    ),
    h("td", { class: "num" }, file ? bytes(e.size) : ""),
    h("td", { class: "nowrap" }, utc(e.modified_at)),
    h("td", { class: "mono muted" }, e.mode),
    h(
      "td",
      { class: "actions-cell nowrap" },
      file
        ? [
            h(
              "button",
              { type: "button", class: "ghost small", "aria-label": `Preview ${e.name}`, onclick: () => preview(e, child) },
              "Preview",
            ),
            h(
              "a",
              { href: at.download(child), download: e.name, class: "button ghost small", "aria-label": `Download ${e.name}` },
              "Download",
            ),
          ]
        : null,
      h("a", { href: at.restore(child), class: "button ghost small", "aria-label": `Restore ${e.name}` }, "Restore…"),
    ),
  );
}

// A directory's entries; a link up unless it is the top.
function filesTable(entries, here, parts, at, preview) {
  const parent = parts.length
    ? h(
        "tr",
        {},
        h("td", { colspan: 5 }, h("a", { href: at.dir(`/${parts.slice(0, -1).join("/")}`) }, "↑ parent directory")),
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
          h("th", { scope: "col", "aria-label": "Actions" }),
        ),
      ),
      h("tbody", {}, parent, entries.map((e) => fileRow(e, here, at, preview))),
    ),
  );
}

// The start of a file in `dialog`, as text; a file that is not text is not shown.
async function showPreview(dialog, at, e, path) {
  const title = h("h2", { id: nextId("preview") }, "Preview of ", h("span", { class: "mono" }, e.name));
  const body = h("div", {}, h("p", { class: "muted", role: "status" }, "Reading the file… (a runner runs plakar)"));
  const close = h("button", { type: "button", class: "ghost close", "aria-label": "Close" }, "✕");
  close.addEventListener("click", () => dialog.close());
  const download = h("a", { href: at.download(path), download: e.name, class: "button" }, "Download");
  replace(dialog, h("header", {}, title, close), body, h("div", { class: "actions" }, download));
  dialog.setAttribute("aria-labelledby", title.id);
  dialog.dataset.path = path;
  if (!dialog.open) dialog.showModal();
  let answer;
  try {
    answer = await get(at.preview(path));
  } catch (err) {
    if (dialog.dataset.path === path) replace(body, notice("error", `Could not read the file: ${err.message}`));
    return;
  }
  if (dialog.dataset.path !== path) return; // another file's preview took its place
  if (answer.text === null) {
    replace(body, notice("info", "This file is not text: it is not previewed. Download it to open it."));
    return;
  }
  replace(
    body,
    answer.truncated
      ? notice("warn", `Only the first ${bytes(answer.limit)} of this file (${bytes(e.size)}) is shown. Download it to see all of it.`)
      : h("p", { class: "muted" }, `All of the file: ${bytes(answer.size)}.`),
    h("pre", { class: "preview", tabindex: 0, "aria-label": `Content of ${e.name}` }, answer.text),
  );
}

async function showFiles(el, path, at, preview) {
  let answer;
  try {
    answer = await get(at.files(path));
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
  const entries = answer.entries.sort(byName);
  replace(
    el,
    h(
      "div",
      { class: "list-head" },
      pathCrumbs(parts, at.dir),
      h("span", { class: "spacer" }),
      h("a", { href: at.restore(here), class: "button small" }, "Restore this folder…"),
    ),
    entries.length
      ? filesTable(entries, here, parts, at, preview)
      : h("p", { class: "empty" }, "This directory is empty."),
  );
}

export async function snapshotView(root, ctx) {
  const [storeId, snapshotId] = ctx.params;
  const at = places(storeId, snapshotId);
  const store = ctx.cat.connectors.get(storeId);
  const details = h(
    "div",
    {},
    h("p", { class: "muted", role: "status" }, "Loading the snapshot… (a runner is asked to run plakar)"),
  );
  const files = h("div", {}, h("p", { class: "muted", role: "status" }, "Listing files…"));
  append(
    root,
    snapshotHead(storeId, snapshotId, store, at),
    h("section", { class: "card" }, details),
    h("section", { class: "card" }, h("h2", {}, "Files"), files),
  );
  const dialog = h("dialog", { class: "preview" });
  root.append(dialog);
  const preview = (e, path) => showPreview(dialog, at, e, path);
  const showDir = (path) => showFiles(files, path, at, preview);
  // Without a path the listing opens where the backup started (the snapshot's root).
  const path = ctx.query.get("path");
  if (path) await Promise.all([showDetails(details, storeId, snapshotId, store), showDir(path)]);
  else await showDir((await showDetails(details, storeId, snapshotId, store))?.root || "/");
}
