// API tokens (admins only): who may use the api and with which role. A new token is shown
// once, when it is made (the api keeps only its hash); a revoked one stays listed, with
// its name, so that the audit trail still says whose it was.

import { del, get, post } from "./api.js";
import { append, busy, copyButton, dataTable, field, h, notice, onSubmit, replace, when } from "./dom.js";

function tokenForm(roles, onMade) {
  const name = h("input", { type: "text", maxlength: 128, required: true, placeholder: "e.g. prometheus, nightly-script" });
  const role = h("select", {}, roles.map((r) => h("option", { value: r.role }, r.role)));
  const meaning = h("p", { class: "hint" });
  const explain = () => replace(meaning, roles.find((r) => r.role === role.value)?.may ?? "");
  role.addEventListener("change", explain);
  explain();
  const submit = h("button", { type: "submit", class: "primary" }, "Create token");
  const form = h(
    "form",
    { class: "form card", novalidate: true, "aria-label": "New API token" },
    h("div", { class: "form-error" }),
    h("div", { class: "grid2" }, field("Name", name, { name: "name" }), field("Role", role, { name: "role" })),
    meaning,
    h("div", { class: "actions" }, submit),
  );
  onSubmit(form, submit, async () => onMade(await post("/tokens", { name: name.value.trim(), role: role.value })));
  return form;
}

// The token just made: shown this once, to be copied now.
function madeNotice(made) {
  return h(
    "div",
    { class: "card made-token", role: "status" },
    h("p", {}, h("b", {}, `Token "${made.name}" (${made.role})`), ": copy it now, it is not shown again."),
    h("p", {}, h("code", { class: "mono secret-once" }, made.token), " ", copyButton(made.token)),
  );
}

function tokenTable(tokens, reload) {
  return dataTable(
    "tokens",
    ["Name", "Role", "Created", "Last used", ""],
    tokens.map((t) => {
      let state = h("span", { class: "muted" }, `revoked ${t.revoked_at ? when(t.revoked_at) : ""}`);
      if (!t.revoked_at) {
        state = h("button", { type: "button", class: "ghost small danger" }, "Revoke");
        state.addEventListener("click", () =>
          busy(state, async () => {
            if (!confirm(`Revoke the token "${t.name}"? Whatever uses it is refused from now on, and its UI sessions end.`)) return;
            try {
              await del(`/tokens/${t.id}`);
              reload();
            } catch (err) {
              replace(state.parentElement, notice("error", err.message));
            }
          }),
        );
      }
      return h(
        "tr",
        { class: t.revoked_at ? "revoked" : "" },
        h("td", {}, t.name),
        h("td", {}, h("span", { class: "tag" }, t.role)),
        h("td", { title: t.created_at }, when(t.created_at)),
        h("td", {}, t.last_used_at ? when(t.last_used_at) : "never"),
        h("td", { class: "actions-cell" }, state),
      );
    }),
  );
}

export async function tokensView(root, ctx, made = null) {
  const tokens = await get("/tokens");
  const reload = (fresh = null) => {
    replace(root);
    tokensView(root, ctx, fresh).catch((e) => append(root, notice("error", e.message)));
  };
  append(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, "API tokens")),
    h(
      "p",
      { class: "hint" },
      "Each script, tool or person gets a token of its own, of the least role it needs: the audit trail says which token did what.",
    ),
    made ? madeNotice(made) : null,
    tokenTable(tokens, () => reload()),
    tokenForm(ctx.cat.rules.roles, (fresh) => reload(fresh)),
  );
}
