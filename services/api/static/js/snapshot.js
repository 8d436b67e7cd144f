// A snapshot: its details and its files, one directory at a time.

import { get, query, unavailableText } from "./api.js";
import { append, bytes, copyButton, h, notice, replace, shortId, utc, when } from "./dom.js";

const isDir = (e) => e.type === "directory";

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
    h("section", { class: "card" }, details),
    h("section", { class: "card" }, h("h2", {}, "Files"), files),
  );

  const showDetails = async () => {
    try {
      const all = await get(`/connectors/${storeId}/snapshots`);
      const s = all.find((x) => x.id.startsWith(snapshotId));
      if (!s) {
        replace(details, notice("warn", `No snapshot ${snapshotId} in this store: it may have been removed.`));
        return null;
      }
      const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
      replace(
        details,
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
    } catch (e) {
      replace(details, notice("error", `Could not read the snapshot: ${e.message}`));
      return null;
    }
  };

  const showFiles = async (path) => {
    let answer;
    try {
      answer = await get(`/connectors/${storeId}/snapshots/${snapshotId}/files${query({ path })}`);
    } catch (e) {
      replace(
        files,
        notice(
          e.unavailable ? "info" : "error",
          e.unavailable ? unavailableText("Browsing a snapshot's files") : e.message,
        ),
      );
      return;
    }
    const here = answer.path;
    const parts = here.split("/").filter(Boolean);
    const crumbs = h(
      "nav",
      { class: "path", "aria-label": "Directory" },
      h("a", { href: href("/") }, "/"),
      parts.map((p, i) => [
        i ? h("span", { class: "sep" }, "/") : null,
        h("a", { href: href(`/${parts.slice(0, i + 1).join("/")}`) }, p),
      ]),
    );
    const entries = answer.entries.sort((a, b) => isDir(b) - isDir(a) || a.name.localeCompare(b.name));
    const child = (e) => `${here.replace(/\/$/, "")}/${e.name}`;
    replace(
      files,
      crumbs,
      entries.length
        ? h(
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
              h(
                "tbody",
                {},
                parts.length
                  ? h(
                      "tr",
                      {},
                      h(
                        "td",
                        { colspan: 4 },
                        h("a", { href: href(`/${parts.slice(0, -1).join("/")}`) }, "↑ parent directory"),
                      ),
                    )
                  : null,
                entries.map((e) =>
                  h(
                    "tr",
                    {},
                    h(
                      "td",
                      { class: "mono" },
                      isDir(e) ? h("a", { href: href(child(e)), class: "dir" }, `${e.name}/`) : e.name,
                      e.target ? h("span", { class: "muted" }, ` → ${e.target}`) : null,
                    ),
                    h("td", { class: "num" }, e.type === "file" ? bytes(e.size) : ""),
                    h("td", { class: "nowrap" }, utc(e.modified_at)),
                    h("td", { class: "mono muted" }, e.mode),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "empty" }, "This directory is empty."),
    );
  };
  // Without a path the listing opens where the backup started (the snapshot's root).
  const path = ctx.query.get("path");
  if (path) await Promise.all([showDetails(), showFiles(path)]);
  else await showFiles((await showDetails())?.root || "/");
}
