// @ts-check
// A head's view of the department: members, whether the signed membership
// (the chain every browser checks before wrapping a key for anyone) holds
// them with the key they use now, and the head's signatures.
//
// Admitting is comparing (docs/crypto.md §9, R7): every path that signs,
// "Sign admission", a member's new key (a `replace`) and "Admit and sign",
// first shows the colleague's fingerprint to compare with them, and signs
// only that key; if the server shows another by then, nothing is signed
// (fingerprint_mismatch). A colleague without keys yet is admitted unsigned:
// their signature stays pending, offered here once they have keys.
import * as c from "../crypto.js";
import { get } from "../api.js";
import { h, showError, toast } from "../ui.js";

/** @import { DepartmentKeys, KeyMember, Refusal } from "../types/api.js" */

/**
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 */
export function render(app, departmentId) {
  const state = app.session;
  const department = state.departments.get(departmentId);
  const list = h("ul", { class: "list", "aria-label": "Members" });
  const error = h("p", { class: "error", role: "alert", id: "members-error" });
  const dialog = h("dialog", { "aria-label": "Compare fingerprints", id: "compare-dialog" });

  /**
   * The comparison before any signature; resolves true only on "It matches".
   * @param {string} name
   * @param {string} fingerprint
   * @param {{replacing?: boolean}} [options]
   * @returns {Promise<boolean>}
   */
  const compare = (name, fingerprint, { replacing = false } = {}) => new Promise((resolve) => {
    const finish = (/** @type {boolean} */ value) => {
      dialog.close();
      resolve(value);
    };
    const sign = h("button", { type: "button", class: "primary", id: "confirm-sign", onclick: () => finish(true) }, "It matches: sign");
    dialog.replaceChildren(h("h2", {}, replacing ? `Sign ${name}'s new key` : `Sign ${name}'s admission`),
      ...(replacing ? [h("p", { class: "notice" }, `${name} now uses another key than the one signed before (a new phone, or keys restored from another device). Sign it only after checking with ${name} in person or by a call you placed.`)] : []),
      h("p", {}, `Ask ${name} to open Rounds and read their key fingerprint (My departments → My key fingerprint). Sign only if every group matches:`),
      h("p", { class: "fingerprint", id: "compare-fingerprint" }, c.groupFingerprint(fingerprint)),
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => finish(false) }, "Cancel"), sign));
    dialog.addEventListener("cancel", () => resolve(false), { once: true });
    dialog.showModal();
    sign.focus();
  });

  /**
   * Compare, then sign for exactly the key compared, then share the history's keys with them.
   * @param {string} name
   * @param {number} user
   * @param {string} fingerprint
   * @param {{replacing?: boolean}} [options]
   */
  const signFor = async (name, user, fingerprint, options) => {
    if (!(await compare(name, fingerprint, options))) return false;
    await app.endToEnd.attest(departmentId, user, { fingerprint });
    // A newcomer (or a new key) reads the history: share the versions this device holds.
    await app.endToEnd.shareHistory(departmentId, user).catch(() => {});
    return true;
  };

  /** @param {() => Promise<string | false>} fn what was done, in words; false: nothing */
  const act = async (fn) => {
    showError(error, null);
    try {
      const done = await fn();
      if (done) toast(done);
      await draw();
    } catch (e) {
      showError(error, e);
    }
  };

  const draw = async () => {
    const [members, keys] = await Promise.all([state.departmentMembers(departmentId, { force: true }),
      /** @type {Promise<DepartmentKeys>} */ (get(`/api/departments/${departmentId}/keys`))]);
    /** @type {import("../crypto.js").MembershipChain | null} */
    let chain = null;
    try {
      chain = await app.endToEnd.chain(departmentId, { fresh: true });
    } catch (e) {
      showError(error, e);
    }
    /** @type {Map<number, KeyMember>} */
    const byUser = new Map(keys.members.map((m) => [m.user, m]));
    list.replaceChildren(...members.map((m) => {
      /** @type {Partial<KeyMember>} */
      const k = byUser.get(m.user.id) || {};
      const held = chain?.members.get(m.user.id);
      const replacing = Boolean(held && k.fingerprint && held.fingerprint !== k.fingerprint);
      const signed = Boolean(held && k.fingerprint && held.fingerprint === k.fingerprint && held.role === m.role);
      const name = m.user.display_name || m.user.username;
      const self = m.user.id === state.user.id;
      const status = !k.fingerprint ? "Has not set up keys yet (signature pending)" : signed ? "Admission signed"
        : self ? "Awaiting a signature (an administrator's for a first head)"
          : replacing ? "New key: awaiting your signature" : "Awaiting your signature";
      const buttons = [];
      if (chain && k.fingerprint && !signed && !self) {
        buttons.push(h("button", {
          type: "button", class: "primary", dataset: { sign: m.user.username },
          // k.fingerprint: tested just above.
          onclick: () => act(async () => (await signFor(name, m.user.id, /** @type {string} */ (k.fingerprint), { replacing }))
            && (replacing ? `${name}'s new key is signed.` : `${name}'s admission is signed.`)),
        }, replacing ? "Sign new key" : "Sign admission"));
      }
      if (!self) {
        buttons.push(h("button", {
          type: "button", class: "danger", dataset: { remove: m.user.username },
          onclick: () => confirm(`Remove ${name} from ${department?.name}?`)
            && act(async () => (await app.endToEnd.removeMember(departmentId, m.user.id)) && `${name} was removed.`),
        }, "Remove"));
      }
      return h("li", { class: "card stack", dataset: { member: m.user.username, status: signed ? "signed" : "pending" } },
        h("div", { class: "row" }, h("span", { class: "grow" }, h("strong", {}, name), h("div", { class: "sub" }, `${m.role === "head" ? "Head" : "Member"} · ${m.user.username} · user ${m.user.id} · ${status}`))),
        k.fingerprint ? h("p", { class: "fingerprint muted" }, c.groupFingerprint(k.fingerprint)) : null,
        buttons.length ? h("div", { class: "row" }, buttons) : null);
    }));
  };

  /**
   * Admit, then, once they are a member with keys, the same comparison as
   * "Sign admission" before anything is signed; without keys, admitted unsigned.
   */
  /** @param {number} user @param {"head" | "member"} role */
  const admitAndSign = async (user, role) => {
    await app.endToEnd.admit(departmentId, user, role, { fingerprint: null });
    const members = await state.departmentMembers(departmentId, { force: true });
    const name = members.find((m) => m.user.id === user)?.user.display_name || `User ${user}`;
    let listed;
    try {
      listed = await app.endToEnd.membership.listedMember(departmentId, user);
    } catch (e) {
      if (/** @type {Refusal} */ (e).code !== "keys_not_published") throw e;
      return `${name} is admitted. They have no keys yet: their signature is pending, sign it here once they have signed in.`;
    }
    const fingerprint = listed.public.fingerprint;
    if (!(await signFor(name, user, fingerprint))) {
      return `${name} is admitted, not signed: sign their admission once you have compared their fingerprint.`;
    }
    return `${name} is admitted and signed.`;
  };

  const userId = h("input", { id: "admit-user", name: "user_id", inputmode: "numeric", required: true, pattern: "[0-9]+" });
  const role = h("select", { id: "admit-role", name: "role" }, h("option", { value: "member" }, "Member"), h("option", { value: "head" }, "Head"));
  const admit = h("form", {
    class: "card",
    onsubmit: (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      act(() => admitAndSign(Number(userId.value), /** @type {"head" | "member"} */ (role.value))); // the select's two options
    },
  }, h("h2", {}, "Admit a colleague"),
  h("div", {}, h("label", { for: "admit-user" }, "Staff user number"), userId),
  h("div", {}, h("label", { for: "admit-role" }, "Role"), role),
  h("p", { class: "muted" }, "You will compare their key fingerprint with them before signing."),
  h("button", { class: "primary", type: "submit" }, "Admit and sign"));

  const mine = app.endToEnd.fingerprint ? h("p", { class: "muted" }, "Your key fingerprint: ", h("span", { class: "fingerprint" }, c.groupFingerprint(app.endToEnd.fingerprint))) : null;
  draw().catch((e) => showError(error, e));
  return { el: h("div", { class: "stack" }, error, list, admit, mine, dialog), title: `${department?.name ?? ""} — members`, back: true };
}
