// @ts-check
// A head's view of the department: members, whether the signed membership
// (the chain every browser checks before wrapping a key for anyone) holds
// them with the key they use now, and the head's signatures.
//
// Admitting is comparing (docs/crypto.md §9, R7): every path that signs,
// "Sign admission", a member's new key (a `replace`) and "Admit and sign"
// (views/admitting.js: colleagues found by name, several at once), first
// shows the colleague's comparison code to compare with them, and signs
// only that key; if the server shows another by then, nothing is signed
// (fingerprint_mismatch). A colleague without keys yet is admitted unsigned:
// their signature stays pending, offered here once they have keys.
//
// The list is live: a member admitted, removed or given another role by
// anyone (another head, this head on another device) redraws it.
import * as c from "../crypto.js";
import { get } from "../api.js";
import { N_, t } from "../i18n.js";
import { h, showError, toast } from "../ui.js";
import { admitCard } from "./admitting.js";
import { confirmWithReason } from "./confirm.js";

/** @import { ChangeEvent } from "../state.js" */

// A member's role, in words (the codes are the server's).
const ROLES = { head: N_("Head"), member: N_("Member") };
/** @import { DepartmentKeys, KeyMember, Member } from "../types/api.js" */

/**
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 */
export function render(app, departmentId) {
  const state = app.session;
  const department = state.departments.get(departmentId);
  const list = h("ul", { class: "list", "aria-label": t("Members") });
  const error = h("p", { class: "error", role: "alert", id: "members-error" });
  const dialog = h("dialog", { "aria-label": t("Compare fingerprints"), id: "compare-dialog" });

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
    const sign = h("button", { type: "button", class: "primary", id: "confirm-sign", onclick: () => finish(true) }, t("It matches: sign"));
    dialog.replaceChildren(h("h2", {}, replacing ? t("Sign {name}'s new key", { name }) : t("Sign {name}'s admission", { name })),
      ...(replacing ? [h("p", { class: "notice" }, t("{name} now uses another key than the one signed before (a new phone, or keys restored from another device). Sign it only after checking with {name} in person or by a call you placed.", { name }))] : []),
      h("p", {}, t("Ask {name} to open Rounds → My profile and read their comparison code aloud. Sign only if it matches:", { name })),
      h("p", { class: "fingerprint comparison", id: "compare-code" }, c.comparisonCode(fingerprint)),
      h("details", {}, h("summary", {}, t("Whole fingerprint")), h("p", { class: "fingerprint muted", id: "compare-fingerprint" }, c.groupFingerprint(fingerprint))),
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => finish(false) }, t("Cancel")), sign));
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

  /**
   * Ask before removing: what the member loses, and a reason for the audit trail.
   * @param {string} name
   * @param {string} [department] its name, once the departments are known
   */
  const confirmRemoval = (name, department = state.departments.get(departmentId)?.name) => confirmWithReason({
    title: department ? t("Remove {name} from {department}?", { name, department }) : t("Remove {name} from the department?", { name }),
    id: "remove",
    verb: t("Remove"),
    lines: [
      t("From now on, {name} loses access to this department's conversations and photos.", { name }),
      t("The room key is replaced before the next message, so what is written from now on cannot be read with the keys they hold."),
      h("p", { class: "muted" }, t("What {name} already saw and what their devices already hold is not recalled.", { name })),
    ],
  });

  /** @type {Member[]} */
  let current = [];
  // A head's "Admit colleagues" card, once the socket's hello says the role here.
  /** @type {ReturnType<typeof admitCard> | null} */
  let admitting = null;
  const admitSlot = h("div");
  const el = h("div", { class: "stack" }, error, list, admitSlot);
  let drawn = 0;
  const draw = async () => {
    const mine = ++drawn;
    const [members, keys] = await Promise.all([state.departmentMembers(departmentId, { force: true }),
      /** @type {Promise<DepartmentKeys>} */ (get(`/api/departments/${departmentId}/keys`))]);
    if (mine !== drawn) return; // a later change redraws with newer lists
    /** @type {import("../crypto.js").MembershipChain | null} */
    let chain = null;
    try {
      chain = await app.endToEnd.chain(departmentId, { fresh: true });
    } catch (e) {
      showError(error, e);
    }
    if (mine !== drawn) return;
    current = members;
    const head = state.isHead(departmentId);
    if (head && !admitting) {
      admitting = admitCard(app, departmentId, {
        isMember: (user) => current.some((m) => m.user.id === user),
        changed: () => draw().catch((e) => showError(error, e)),
      });
      admitSlot.replaceChildren(admitting.el);
    }
    const named = state.departments.get(departmentId)?.name;
    if (named) app.retitle(el, t("{department} — members", { department: named }));
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
      const status = !k.fingerprint ? t("Has not set up keys yet (signature pending)") : signed ? t("Admission signed")
        : self ? t("Awaiting a signature (an administrator's for a first head)")
          : replacing ? t("New key: awaiting your signature") : t("Awaiting your signature");
      const buttons = [];
      if (head && chain && k.fingerprint && !signed && !self) {
        buttons.push(h("button", {
          type: "button", class: "primary", dataset: { sign: m.user.username },
          // k.fingerprint: tested just above.
          onclick: () => act(async () => (await signFor(name, m.user.id, /** @type {string} */ (k.fingerprint), { replacing }))
            && (replacing ? t("{name}'s new key is signed.", { name }) : t("{name}'s admission is signed.", { name }))),
        }, replacing ? t("Sign new key") : t("Sign admission")));
      }
      if (head && !self) {
        buttons.push(h("button", {
          type: "button", class: "danger", dataset: { remove: m.user.username },
          onclick: () => act(async () => {
            const confirmed = await confirmRemoval(name);
            if (!confirmed) return false;
            await app.endToEnd.removeMember(departmentId, m.user.id, confirmed);
            return t("{name} was removed.", { name });
          }),
        }, t("Remove")));
      }
      return h("li", { class: "card stack", dataset: { member: m.user.username, status: signed ? "signed" : "pending" } },
        h("div", { class: "row" }, h("span", { class: "grow" }, h("strong", {}, name), h("div", { class: "sub" }, `${t(m.role === "head" ? ROLES.head : ROLES.member)} · ${status}`))),
        k.fingerprint ? h("p", { class: "fingerprint muted" }, t("Code {code}", { code: c.comparisonCode(k.fingerprint) })) : null,
        buttons.length ? h("div", { class: "row" }, buttons) : null);
    }));
  };

  // Live: another head's admission, removal or signature (membership.signed), or this
  // head's on another device.
  const redraw = () => draw().then(() => admitting?.redraw()).catch((e) => showError(error, e));
  const onChange = (/** @type {Event} */ event) => {
    const { what, department: changed } = /** @type {ChangeEvent} */ (event).detail;
    if (what === "departments" && !admitting) {
      redraw(); // the role here is known now (a page opened on this screen)
      return;
    }
    if (what !== "members" || changed !== departmentId) return;
    redraw();
  };
  state.addEventListener("change", onChange);

  const mine = app.endToEnd.fingerprint ? h("p", { class: "muted" }, t("Your comparison code: "), h("span", { class: "fingerprint" }, c.comparisonCode(app.endToEnd.fingerprint)), " (", h("a", { href: "#/me" }, t("My profile")), ")") : null;
  if (mine) el.append(mine);
  el.append(dialog);
  draw().catch((e) => showError(error, e));
  return {
    el,
    title: t("{department} — members", { department: department?.name ?? "" }), back: true,
    unmount: () => state.removeEventListener("change", onChange),
  };
}
