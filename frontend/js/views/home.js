// @ts-check
// My departments, with unread counts, my requests and consults, and the way to a patient.
import { t, tn } from "../i18n.js";
import { h, explain } from "../ui.js";
import { requestsSection } from "../advice.js";
import { consultsSection } from "../consults.js";

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const list = h("ul", { class: "list", "aria-label": t("My departments") });
  const draw = () => {
    const departments = [...app.session.departments.values()];
    list.replaceChildren(...departments.map((d) => {
      const unread = app.session.departmentUnread(d.id);
      // The link's name is its text (SC 2.5.3): the unread count is read out, not only drawn.
      return h("li", {}, h("a", { href: `#/d/${d.id}` },
        h("span", { class: "grow" }, h("strong", {}, d.name), h("div", { class: "sub" }, d.role === "head" ? t("Head of department") : t("Member"))),
        unread ? [h("span", { class: "badge" }, unread), h("span", { class: "visually-hidden" }, " ", tn(unread, "unread", "unread"))] : null));
    }));
    if (!departments.length) list.append(h("li", { class: "muted" }, app.socket?.isOnline ? t("You are in no department yet.") : t("Loading…")));
  };
  const onChange = () => draw();
  app.session.addEventListener("change", onChange);
  draw();
  const findButton = h("a", { class: "button primary", href: "#/find" }, t("Find a patient"));
  const mine = app.e2e?.fingerprint;
  // The code a head compares with me before signing my admission: on my profile.
  const fingerprint = mine ? h("a", { class: "button", href: "#/me", id: "my-profile" }, t("My profile and comparison code")) : null;
  // An institution key the server shows that is not the pinned one: said at once, not only when refused.
  const pins = (app.pinProblems || []).map((problem) => h("p", { class: "error", role: "alert", dataset: { code: problem.code } }, explain(problem)));
  const administration = app.session.user.is_admin ? h("a", { class: "button", href: "#/admin" }, t("Administration")) : null;
  const review = app.session.user.is_compliance_officer ? h("a", { class: "button", href: "#/compliance" }, t("Compliance review")) : null;
  const requests = requestsSection(app);
  const consults = consultsSection(app); // the consults of other departments I am the guest of
  const el = h("div", { class: "stack" }, pins, findButton, requests.el, consults.el, h("h2", {}, t("My departments")), list, fingerprint, administration, review);
  return { el, title: "Rounds", focus: findButton, unmount: () => {
    app.session.removeEventListener("change", onChange);
    requests.unmount();
    consults.unmount();
  } };
}
