// @ts-check
// An administrator's screen: departments and their heads, and "Appoint the
// first head": a statement signed in this browser with the institution's
// admin key, chosen as a file (adminkey.js), checked against the pinned
// fingerprint, used once and wiped. It is signed at the head of the
// department's chain as this browser verifies it (e2e/membership.js
// appointHead: seq and prev from the verified head, signed again if another
// statement took the position first), for the head's key as it was shown
// here to compare; a head the chain already holds is not signed again.
// The server keeps the statement after
// checking it (rooms/keys.py check_post_statement): a staff user may post a
// statement signed by the admin key, and only to appoint a head when the
// department's signed membership has none.
//
// The server lists every department to an administrator
// (`GET /api/departments?all=1`, each with its `heads`) and gives them each
// department's statements (`GET /api/departments/{id}/statements`), so the
// screen lists the departments, checks each head's appointment against the
// pinned admin key ("Appointment signed" / "Not signed yet") and offers
// "Appoint the first head" where none is signed. The fallback, for a server
// that does not list departments to administrators (members only), asks for
// the department and head numbers, which the head reads from their own
// department screen.
import * as c from "../crypto.js";
import { get } from "../api.js";
import { withAdminKey } from "../adminkey.js";
import { h, explain, showError } from "../ui.js";
import { t } from "../i18n.js";

/** @import { DepartmentWithHeads, Refusal } from "../types/api.js" */
/** A department as listed, or only its number (typed in). @typedef {{id: number, name?: string}} DepartmentNamed */
/** A head as listed, or only their user number. @typedef {{id: number, username?: string, display_name?: string}} Person */

/** @param {unknown} error */
function refusal(error) {
  // The server's own sentence says which check failed (not a head of it, chain refused…).
  if (["forbidden", "invalid_request", "bad_signature", "invalid_key"].includes(/** @type {string} */ (/** @type {Refusal} */ (error)?.code))
    && /** @type {Refusal} */ (error).status) return /** @type {Refusal} */ (error).message;
  return explain(error);
}

/** @param {Person} user */
function personName(user) {
  return user.display_name || user.username || t("user {id}", { id: user.id });
}

/** @param {string} name */
function capitalised(name) {
  return `${name[0].toUpperCase()}${name.slice(1)}`;
}

/**
 * A translated sentence with a link where its `{link}` stands (one sentence, the link inside).
 * @param {string} sentence
 * @param {HTMLElement} link
 */
function withLink(sentence, link) {
  const [before, after = ""] = sentence.split("{link}");
  return [before, link, after].filter((part) => part !== "");
}

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  if (!app.session.user.is_admin) {
    return { el: h("p", { class: "error", role: "alert" }, t("Only an administrator may do this.")), title: t("Administration"), back: true };
  }
  /** @type {{admin?: string | null}} */
  const pins = app.pins || {};
  const error = h("p", { class: "error", role: "alert", id: "admin-error" });
  const departments = h("ul", { class: "list", "aria-label": t("Departments") });
  const panel = h("section", { class: "card stack", id: "appoint", hidden: true, "aria-labelledby": "appoint-title" });
  const intro = h("div", { class: "card stack" }, h("h2", {}, t("Departments")),
    h("p", { class: "muted" }, t("A department's first head is appointed by a statement signed with the institution's admin key. Every member's browser checks it against the key IT pinned before it encrypts anything for the department.")));

  // --- the appointment of one head -------------------------------------------------------

  const openAppointment = async (/** @type {DepartmentNamed} */ department, /** @type {Person} */ head) => {
    error.textContent = "";
    panel.hidden = false;
    const who = personName(head);
    const where = department.name || t("department {id}", { id: department.id });
    const title = t("Appoint {name} head of {department}", { name: who, department: where });
    panel.replaceChildren(h("h2", { id: "appoint-title" }, title), h("p", { class: "loading" }, t("Loading their key…")));
    panel.scrollIntoView({ block: "start" });
    let identity;
    try {
      const data = await get(`/api/keys/identity/${head.id}`);
      identity = c.checkedPublic(data.public, data.fingerprint, who);
    } catch (e) {
      const sentence = /** @type {Refusal} */ (e).code === "not_found"
        ? t("{name} has not set up their keys yet: ask them to sign in to Rounds once first, then come back here.", { name: capitalised(who) })
        : refusal(e);
      panel.replaceChildren(h("h2", { id: "appoint-title" }, title), h("p", { class: "error", role: "alert", id: "appoint-error" }, sentence));
      return;
    }
    const file = h("input", { id: "admin-key-file", name: "admin_key", type: "file", accept: ".key,text/plain" });
    const result = h("p", { role: "status", id: "appoint-result" });
    const problem = h("p", { class: "error", role: "alert", id: "appoint-error" });
    const sign = h("button", { type: "submit", class: "primary", id: "sign-appointment" }, t("It matches: sign the appointment"));
    file.addEventListener("change", () => (problem.textContent = ""));
    const form = h("form", {
      class: "stack",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        showError(problem, null);
        result.textContent = "";
        sign.disabled = true;
        try {
          // Signed for the key shown above, which the head read out: if the server shows
          // another by now, nothing is signed (fingerprint_mismatch).
          const { signed } = await withAdminKey(file.files?.[0], pins.admin,
            (adminKey) => app.endToEnd.appointHead(department.id, head.id, adminKey, { fingerprint: identity.fingerprint }));
          const named = { name: capitalised(who), department: where };
          result.textContent = signed.length
            ? t("{name} is now the signed head of {department}. They can sign their colleagues' admissions.", named)
            : t("{name} is already the signed head of {department}, with this key: nothing more to sign.", named);
          form.replaceChildren(result);
          draw();
        } catch (e) {
          showError(problem, e);
          problem.textContent = refusal(e);
        } finally {
          file.value = ""; // the File object goes with it; nothing was kept
          sign.disabled = false;
        }
      },
    },
    h("p", {}, t("Ask {name} to open Rounds and read their whole key fingerprint (My profile → My whole key fingerprint). Sign only if every group matches:", { name: who })),
    h("p", { class: "fingerprint", id: "head-fingerprint" }, c.groupFingerprint(identity.fingerprint)),
    h("div", {}, h("label", { for: "admin-key-file" }, t("The institution's admin key file")), file,
      h("p", { class: "muted" }, t("Read in this browser only: it is checked against the key IT pinned, used for this one signature and wiped. It is never sent to the server."))),
    problem,
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => (panel.hidden = true) }, t("Cancel")),
      sign));
    panel.replaceChildren(h("h2", { id: "appoint-title" }, title), form, result);
    file.focus();
  };

  // --- the list, where the server gives it; the numbers otherwise -------------------------

  /** @param {DepartmentNamed} department @param {Person} head @returns {Promise<[string, string]>} */
  const status = async (department, head) => {
    try {
      const chain = await app.endToEnd.chain(department.id, { fresh: true });
      const held = chain.members.get(head.id);
      if (held?.role === "head") return ["signed", t("Appointment signed")];
      return [[...chain.members.values()].some((m) => m.role === "head") ? "other" : "unsigned",
        t("Not signed yet")];
    } catch (e) {
      return ["unknown", /** @type {Refusal} */ (e).code === "not_found" ? t("Signature not visible to administrators") : explain(e)];
    }
  };

  const listed = async (/** @type {DepartmentWithHeads[]} */ list) => {
    departments.replaceChildren(...list.map((department) => {
      const rows = (department.heads || []).map((head) => {
        const line = h("div", { class: "sub" }, t("Checking the signature…"));
        const item = h("li", { class: "card stack", dataset: { department: department.id, head: head.username } },
          h("div", {}, h("strong", {}, department.name), h("div", { class: "sub" }, t("Head: {name} ({username})", { name: personName(head), username: head.username })), line));
        status(department, head).then(([kind, text]) => {
          line.textContent = text;
          item.dataset.status = kind;
          if (kind === "unsigned" || kind === "unknown") {
            item.append(h("button", { type: "button", class: "primary", onclick: () => openAppointment(department, head) }, t("Appoint the first head")));
          }
        });
        return item;
      });
      return rows.length ? rows : h("li", { class: "card" }, h("strong", {}, department.name), h("div", { class: "sub" }, t("No head")));
    }).flat());
  };

  const byNumber = () => {
    const departmentNumber = h("input", { id: "appoint-department", name: "department", inputmode: "numeric", required: true, pattern: "[0-9]+" });
    const userNumber = h("input", { id: "appoint-user", name: "user", inputmode: "numeric", required: true, pattern: "[0-9]+" });
    departments.replaceChildren(h("li", { class: "card" }, h("form", {
      class: "stack",
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        openAppointment({ id: Number(departmentNumber.value) }, { id: Number(userNumber.value) });
      },
    },
    h("h2", {}, t("Appoint the first head")),
    h("p", { class: "notice" }, t("This server lists departments only to their members. Ask the new head to open their department in Rounds: it shows the department number and their user number to give you.")),
    h("div", {}, h("label", { for: "appoint-department" }, t("Department number")), departmentNumber),
    h("div", {}, h("label", { for: "appoint-user" }, t("Head's user number")), userNumber),
    h("button", { type: "submit", class: "primary" }, t("Find the head's key")))));
  };

  const draw = async () => {
    error.textContent = "";
    if (!pins.admin) {
      departments.replaceChildren(h("li", { class: "notice" }, withLink(t("This browser has no pinned institution key. {link} first."),
        h("a", { href: "#/pin" }, t("Confirm the institution's admin key")))));
      return;
    }
    try {
      const server = await get("/api/keys/institution");
      if (server.admin && server.admin.fingerprint !== pins.admin) {
        showError(error, { code: "admin_key_mismatch" });
        return;
      }
    } catch (e) {
      showError(error, e);
    }
    let list;
    try {
      list = await get("/api/departments?all=1");
    } catch {
      list = null;
    }
    if (Array.isArray(list) && list.length && list.every((d) => Array.isArray(d.heads))) await listed(list);
    else byNumber();
  };
  draw();

  const own = app.keyState === "ready"
    ? h("a", { class: "button", href: "#/" }, t("My departments"))
    : h("p", { class: "muted" }, withLink(t("Administering needs no personal key. To take part in a department yourself, {link}."),
      h("a", { href: "#/keys" }, t("set up your keys"))));
  const el = h("div", { class: "stack", id: "admin" }, intro, error, departments, panel, own);
  return { el, title: t("Administration") };
}
