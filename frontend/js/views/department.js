// @ts-check
// A department's patient threads, newest first, with unread counts. A head
// whose appointment no statement signs yet is told what to give an
// administrator, who signs it with the institution's key (views/admin.js).
import * as c from "../crypto.js";
import { h, patientLabel, shortTime } from "../ui.js";

/** @import { ChangeEvent } from "../state.js" */
/** @import { Thread } from "../types/api.js" */

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
        ? "Your appointment as head is not signed yet, so colleagues' browsers cannot trust the admissions you sign. An administrator signs it with the institution's key (Rounds → Administration). Give them:"
        : "Your admission as head is not signed yet: ask another head of this department to sign it (Members)."),
      ...(first ? [
        h("p", {}, "Department number ", h("strong", { id: "appointment-department" }, String(departmentId)),
          " · your user number ", h("strong", { id: "appointment-user" }, String(app.session.user.id))),
        // Set: this screen is reached with the keys ready.
        h("p", {}, "and read them your key fingerprint: ", h("span", { class: "fingerprint" }, c.groupFingerprint(/** @type {string} */ (app.endToEnd.fingerprint)))),
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
  const list = h("ul", { class: "list", "aria-label": "Conversations" });
  const draw = () => {
    /** @type {Thread[]} */
    const threads = [...app.session.threads.values()].filter((t) => t.department === departmentId).sort((a, b) => b.id - a.id);
    list.replaceChildren(...threads.map((t) => {
      const unread = app.session.unread(t.id);
      const who = h("span", { class: "sub" });
      app.session.patient(t.patient).then((p) => (who.textContent = `${patientLabel(p)} · IPP ${p.ipp}`)).catch(() => {});
      return h("li", {}, h("a", { href: `#/t/${t.id}` },
        h("span", { class: "grow" }, h("strong", {}, t.title), h("div", {}, who), h("div", { class: "sub" }, `${t.last_seq} message${t.last_seq === 1 ? "" : "s"} · opened ${shortTime(t.created_at)}`)),
        t.closed_at ? h("span", { class: "tag" }, "Closed") : null,
        // The count is in the link's name as text: aria-label on a plain span is not read out.
        unread ? [h("span", { class: "badge" }, unread), h("span", { class: "visually-hidden" }, " unread")] : null));
    }));
    if (!threads.length) list.append(h("li", { class: "muted" }, "No conversation yet. Find a patient to start one."));
  };
  const onChange = (/** @type {Event} */ event) => ["threads", "thread", "message", "message.redacted", "receipt", "departments"].includes(/** @type {ChangeEvent} */ (event).detail.what) && draw();
  app.session.addEventListener("change", onChange);
  app.session.loadDepartment(departmentId).then(draw).catch(() => {});
  draw();
  const actions = h("div", { class: "row" },
    h("a", { class: "button primary", href: "#/find" }, "Find a patient"),
    department?.role === "head" ? h("a", { class: "button", href: `#/d/${departmentId}/members` }, "Members") : null);
  // The weekly review is the head's routine; any member may see the department's photos.
  const photos = h("div", { class: "row" },
    h("a", { class: "button", href: `#/d/${departmentId}/review` }, "Weekly photo review"),
    h("a", { class: "button", href: `#/library?department=${departmentId}` }, "Photo library"));
  const notice = department?.role === "head" ? appointmentNotice(app, departmentId) : null;
  const el = h("div", { class: "stack" }, notice, actions, list, photos);
  return { el, title: department?.name || "Department", back: true, unmount: () => app.session.removeEventListener("change", onChange) };
}
