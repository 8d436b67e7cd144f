// The restore task's own fields: which snapshot, which folder of it, and where its
// files go (a new folder of the destination, or over what the destination holds).

import { get } from "./api.js";
import { append, bytes, field, h, notice, plural, replace, shortId, utc } from "./dom.js";

// To the second, and the short id: two snapshots of the same minute differ.
function snapshotOption(s) {
  const tags = s.tags.length ? ` · ${s.tags.join(", ")}` : "";
  return h("option", { value: s.id }, `${shortId(s.id)} · ${utc(s.created_at)}${tags} · ${bytes(s.size)}`);
}

// The snapshot: one of the store's, or (empty) the latest carrying all the labels.
// `initial`: the id or id prefix to select first. Only the answer to the latest request
// is shown.
function snapshotPicker(initial) {
  const select = h("select", {});
  const box = field("Snapshot", select, { name: "snapshot_id", hint: " ", wide: true });
  const hint = box.querySelector(".hint");
  let request = 0;
  const load = async (storeId) => {
    const mine = ++request;
    const keep = select.value || initial || "";
    replace(select, h("option", { value: "" }, "Latest snapshot carrying all the labels (default)"));
    if (!storeId) {
      replace(hint, "Choose the store first.");
      return;
    }
    select.disabled = true;
    replace(hint, "Loading the store's snapshots…");
    try {
      const items = (await get(`/connectors/${storeId}/snapshots`)).sort((a, b) =>
        b.created_at.localeCompare(a.created_at),
      );
      if (mine !== request) return;
      append(select, items.map(snapshotOption));
      if (keep && !items.some((s) => s.id.startsWith(keep)))
        select.append(h("option", { value: keep }, `${keep} (not found in the store)`));
      select.value = (keep && items.find((s) => s.id.startsWith(keep))?.id) || keep;
      replace(
        hint,
        items.length ? `${plural(items.length, "snapshot")} in this store.` : "This store has no snapshot yet.",
      );
    } catch (e) {
      if (mine !== request) return;
      if (keep) select.append(h("option", { value: keep }, keep));
      select.value = keep;
      replace(hint, notice("error", `Could not list the snapshots: ${e.message}`));
    } finally {
      if (mine === request) select.disabled = false;
    }
  };
  return { box, select, load };
}

const MODES = [
  [
    "new_folder",
    "Into a new folder",
    "A new folder of the destination, named restore-<snapshot>-<date>-<time>-<job>: nothing there is touched.",
  ],
  ["overwrite", "Over the destination's files", "Files with the same path are replaced; other files stay."],
];

// Where the files go; a new folder unless the task says otherwise.
function modeChooser(current) {
  const warning = notice("warn", "Files of the destination with the same path are replaced, without asking.");
  const el = h(
    "fieldset",
    { class: "field wide restore-mode", dataset: { fieldBox: "restore_mode" } },
    h("legend", {}, "Where the files go"),
    MODES.map(([value, name, text]) =>
      h(
        "label",
        { class: "type-card" },
        h("input", { type: "radio", name: "restore_mode", value, checked: value === current }),
        h("span", { class: "type-name" }, name),
        h("span", { class: "type-text" }, text),
      ),
    ),
    warning,
  );
  const value = () => el.querySelector("input:checked").value;
  const show = () => (warning.hidden = value() !== "overwrite");
  el.addEventListener("change", show);
  show();
  return { el, value };
}

// `task`: the task edited, if any; `preset`: the query of a new task's form (from the
// snapshot browser: snapshot_id, restore_path). `body()`: the restore's fields.
export function restoreOptions(task, preset) {
  const snapshot = snapshotPicker(task?.snapshot_id || preset.get("snapshot_id"));
  const path = h("input", {
    type: "text",
    class: "mono",
    placeholder: "the whole snapshot",
    value: task?.restore_path ?? preset.get("restore_path") ?? "",
    autocomplete: "off",
  });
  const mode = modeChooser(task?.restore_mode ?? "new_folder");
  const el = h(
    "div",
    { class: "stack" },
    snapshot.box,
    field("Folder to restore", path, {
      name: "restore_path",
      wide: true,
      hint: "A folder (or a file) of the snapshot, as the snapshot browser shows it. Empty: the whole snapshot. It keeps its place below the snapshot's root.",
    }),
    mode.el,
  );
  const body = () => ({
    snapshot_id: snapshot.select.value || null,
    restore_path: path.value.trim() || null,
    restore_mode: mode.value(),
  });
  return { el, load: snapshot.load, body };
}
