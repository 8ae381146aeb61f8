// @ts-check
// A department's patient threads, newest first, with unread counts. A head
// whose appointment no statement signs yet is told what to give an
// administrator, who signs it with the institution's key (views/admin.js).
import * as c from "../crypto.js";
import { t, tn } from "../i18n.js";
import { h, patientLabel, shortTime } from "../ui.js";

/** @import { ChangeEvent } from "../state.js" */
/** @import { Thread } from "../types/api.js" */

/**
 * A translated sentence with elements in place of its {placeholders}.
 * @param {string} text
 * @param {Record<string, HTMLElement>} nodes
 */
function withNodes(text, nodes) {
  return text.split(/(\{\w+\})/).map((part) => (/^\{\w+\}$/.test(part) && nodes[part.slice(1, -1)]) || part).filter(Boolean);
}

/**
 * For a head the signed membership does not name yet: what the administrator needs.
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 */
function appointmentNotice(app, departmentId) {
  const notice = h("div", { class: "notice stack", id: "appointment", hidden: true });
  app.endToEnd.chain(departmentId).then((chain) => {
    if (chain.members.has(app.session.user.id)) return;
    const first = ![...chain.members.values()].some((m) => m.role === "head");
    notice.replaceChildren(
      h("p", {}, first
        ? t("Your appointment as head is not signed yet, so colleagues' browsers cannot trust the admissions you sign. An administrator signs it with the institution's key (Rounds → Administration). Give them:")
        : t("Your admission as head is not signed yet: ask another head of this department to sign it (Members).")),
      ...(first ? [
        h("p", {}, withNodes(t("Department number {department} · your user number {user}"), {
          department: h("strong", { id: "appointment-department" }, String(departmentId)),
          user: h("strong", { id: "appointment-user" }, String(app.session.user.id)),
        })),
        // Set: this screen is reached with the keys ready.
        h("p", {}, withNodes(t("and read them your key fingerprint: {fingerprint}"), {
          fingerprint: h("span", { class: "fingerprint" }, c.groupFingerprint(/** @type {string} */ (app.endToEnd.fingerprint))),
        })),
      ] : []));
    notice.hidden = false;
  }).catch(() => {}); // an unverifiable chain is reported where it matters (members, keys)
  return notice;
}

/**
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 */
export function render(app, departmentId) {
  const department = app.session.departments.get(departmentId);
  const list = h("ul", { class: "list", "aria-label": t("Conversations") });
  const draw = () => {
    /** @type {Thread[]} */
    const threads = [...app.session.threads.values()].filter((thread) => thread.department === departmentId).sort((a, b) => b.id - a.id);
    list.replaceChildren(...threads.map((thread) => {
      const unread = app.session.unread(thread.id);
      const who = h("span", { class: "sub" });
      app.session.patient(thread.patient).then((p) => (who.textContent = t("{patient} · IPP {ipp}", { patient: patientLabel(p), ipp: p.ipp }))).catch(() => {});
      return h("li", {}, h("a", { href: `#/t/${thread.id}` },
        h("span", { class: "grow" }, h("strong", {}, thread.title), h("div", {}, who), h("div", { class: "sub" },
          tn(thread.last_seq, "{count} message · opened {time}", "{count} messages · opened {time}", { time: shortTime(thread.created_at) }))),
        thread.closed_at ? h("span", { class: "tag" }, t("Closed")) : null,
        // The count is in the link's name as text: aria-label on a plain span is not read out.
        unread ? [h("span", { class: "badge" }, unread), h("span", { class: "visually-hidden" }, " ", tn(unread, "unread", "unread"))] : null));
    }));
    if (!threads.length) list.append(h("li", { class: "muted" }, t("No conversation yet. Find a patient to start one.")));
  };
  const onChange = (/** @type {Event} */ event) => ["threads", "thread", "message", "message.redacted", "receipt", "departments"].includes(/** @type {ChangeEvent} */ (event).detail.what) && draw();
  app.session.addEventListener("change", onChange);
  app.session.loadDepartment(departmentId).then(draw).catch(() => {});
  draw();
  const actions = h("div", { class: "row" },
    h("a", { class: "button primary", href: "#/find" }, t("Find a patient")),
    department?.role === "head" ? h("a", { class: "button", href: `#/d/${departmentId}/members` }, t("Members")) : null,
    // Every member reads who is on call; a head edits the roster there (views/oncall.js).
    h("a", { class: "button", href: `#/d/${departmentId}/oncall`, id: "oncall-link" }, t("On call")));
  // The weekly review is the head's routine; any member may see the department's photos.
  const photos = h("div", { class: "row" },
    h("a", { class: "button", href: `#/d/${departmentId}/review` }, t("Weekly photo review")),
    h("a", { class: "button", href: `#/library?department=${departmentId}` }, t("Photo library")));
  const notice = department?.role === "head" ? appointmentNotice(app, departmentId) : null;
  const el = h("div", { class: "stack" }, notice, actions, list, photos);
  return { el, title: department?.name || t("Department"), back: true, unmount: () => app.session.removeEventListener("change", onChange) };
}
