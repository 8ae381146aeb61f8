// A head's view of the department: members, whether their admission is
// signed (the statement the encryption design requires before anyone wraps
// a key for them), signing after comparing fingerprints, admitting and
// removing.
import * as c from "../crypto.js";
import { get } from "../api.js";
import { h, explain, toast } from "../ui.js";

export function render(app, departmentId) {
  const state = app.state;
  const department = state.departments.get(departmentId);
  const list = h("ul", { class: "list", "aria-label": "Members" });
  const error = h("p", { class: "error", role: "alert" });
  const dialog = h("dialog", { "aria-label": "Compare fingerprints" });

  const confirmFingerprint = (name, fingerprint) => new Promise((resolve) => {
    dialog.replaceChildren(h("h2", {}, `Sign ${name}'s admission`),
      h("p", {}, `Ask ${name} to open Rounds and read their key fingerprint. Sign only if every group matches:`),
      h("p", { class: "fingerprint" }, c.groupFingerprint(fingerprint)),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => { dialog.close(); resolve(false); } }, "Cancel"),
        h("button", { type: "button", class: "primary", id: "confirm-sign", onclick: () => { dialog.close(); resolve(true); } }, "It matches: sign")));
    dialog.showModal();
  });

  const act = async (what, fn) => {
    error.textContent = "";
    try {
      await fn();
      toast(what);
      await draw();
    } catch (e) {
      error.textContent = explain(e);
    }
  };

  const draw = async () => {
    const [members, keys] = await Promise.all([state.departmentMembers(departmentId, { force: true }), get(`/api/departments/${departmentId}/keys`)]);
    let chain = null;
    try {
      chain = await app.e2e.membership(departmentId);
    } catch (e) {
      error.textContent = explain(e);
    }
    const byUser = new Map(keys.members.map((m) => [m.user, m]));
    list.replaceChildren(...members.map((m) => {
      const k = byUser.get(m.user.id) || {};
      const signed = chain && k.fingerprint && chain.members.get(m.user.id)?.fingerprint === k.fingerprint && chain.members.get(m.user.id)?.role === m.role;
      const name = m.user.display_name || m.user.username;
      const self = m.user.id === state.user.id;
      const status = !k.fingerprint ? "Has not set up keys yet" : signed ? "Admission signed"
        : self ? "Awaiting a signature (an administrator's for a first head)" : "Awaiting your signature";
      const buttons = [];
      if (k.fingerprint && !signed && !self) {
        buttons.push(h("button", {
          type: "button", class: "primary", dataset: { sign: m.user.username },
          onclick: async () => {
            if (!(await confirmFingerprint(name, k.fingerprint))) return;
            await act(`${name}'s admission is signed.`, async () => {
              await app.e2e.attest(departmentId, m.user.id);
              // A newcomer reads the history: share the versions this device holds.
              await app.e2e.shareHistory(departmentId, m.user.id).catch(() => {});
            });
          },
        }, "Sign admission"));
      }
      if (m.user.id !== state.user.id) {
        buttons.push(h("button", {
          type: "button", class: "danger", dataset: { remove: m.user.username },
          onclick: () => confirm(`Remove ${name} from ${department?.name}?`) && act(`${name} was removed.`, () => app.e2e.removeMember(departmentId, m.user.id)),
        }, "Remove"));
      }
      return h("li", { class: "card stack", dataset: { member: m.user.username } },
        h("div", { class: "row" }, h("span", { class: "grow" }, h("strong", {}, name), h("div", { class: "sub" }, `${m.role === "head" ? "Head" : "Member"} · ${m.user.username} · user ${m.user.id} · ${status}`))),
        k.fingerprint ? h("p", { class: "fingerprint muted" }, c.groupFingerprint(k.fingerprint)) : null,
        buttons.length ? h("div", { class: "row" }, buttons) : null);
    }));
  };

  const userId = h("input", { id: "admit-user", name: "user_id", inputmode: "numeric", required: true });
  const role = h("select", { id: "admit-role", name: "role" }, h("option", { value: "member" }, "Member"), h("option", { value: "head" }, "Head"));
  const admit = h("form", {
    class: "card",
    onsubmit: (event) => {
      event.preventDefault();
      act("Admitted.", () => app.e2e.admit(departmentId, Number(userId.value), role.value));
    },
  }, h("h2", {}, "Admit a colleague"),
  h("div", {}, h("label", { for: "admit-user" }, "Staff user number"), userId),
  h("div", {}, h("label", { for: "admit-role" }, "Role"), role),
  h("button", { class: "primary", type: "submit" }, "Admit and sign"));

  const mine = app.e2e.identity ? h("p", { class: "muted" }, "Your key fingerprint: ", h("span", { class: "fingerprint" }, c.groupFingerprint(app.e2e.identity.fingerprint))) : null;
  draw().catch((e) => (error.textContent = explain(e)));
  return { el: h("div", { class: "stack" }, error, list, admit, mine, dialog), title: `${department?.name ?? ""} — members`, back: true };
}
