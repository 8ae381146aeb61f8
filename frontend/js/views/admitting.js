// @ts-check
// A head admits colleagues found by name (the directory, POST /api/people/search),
// several at once: one confirmation card lists them all with their departments and
// the comparison code of their key, which each reads aloud from their profile; then
// each is admitted and their admission signed, one after the other, each statement
// at the head the previous one made (e2e/membership.js signUntilDone), with the
// progress shown. The first failure stops the run: who was admitted stays admitted,
// who was not yet is left as they were, and the message says which is which.
//
// Admitting is comparing (docs/crypto.md R7): the fingerprint signed is the one the
// card showed; if the server lists another key by then, nothing is signed for that
// colleague (fingerprint_mismatch), who stays admitted and awaits a signature.
import * as c from "../crypto.js";
import { post } from "../api.js";
import { N_, t } from "../i18n.js";
import { explain, h, toast } from "../ui.js";

/** @import { People, Person, Refusal } from "../types/api.js" */

const SEARCH_DELAY_MS = 350;
// The roles a head admits as, in words (the codes are the server's): the select, and the card's title.
const ROLES = { member: N_("Member"), head: N_("Head") };

/** @param {Person} person */
function departmentsLine(person) {
  if (!person.departments.length) return t("In no department yet");
  return person.departments.map((d) => (d.role === "head" ? t("{department} (head)", { department: d.name }) : d.name)).join(" · ");
}

/**
 * The confirmation card's title: whom, as what (one sentence per role: the role is part of it in French).
 * @param {Person[]} people
 * @param {"head" | "member"} role
 */
function admitTitle(people, role) {
  const count = people.length;
  const name = people[0].display_name;
  if (role === "head") return count > 1 ? t("Admit {count} colleagues as heads", { count }) : t("Admit {name} as heads", { name });
  return count > 1 ? t("Admit {count} colleagues as members", { count }) : t("Admit {name} as members", { name });
}

/** @param {string[]} names */
function listed(names) {
  return names.length ? names.join(", ") : t("nobody");
}

/**
 * The "Admit colleagues" card of the members screen.
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 * @param {{isMember: (user: number) => boolean, changed: () => Promise<void>}} members
 *   who is a member now (they cannot be chosen), and what to call once some are admitted
 */
export function admitCard(app, departmentId, members) {
  /** @type {Map<number, Person>} chosen, across searches */
  const chosen = new Map();
  /** @type {Person[]} */
  let shown = [];
  const query = h("input", { id: "people-q", name: "q", type: "search", autocomplete: "off", minlength: 2, maxlength: 100, placeholder: t("e.g. Durand") });
  const results = h("ul", { class: "list", "aria-label": t("Colleagues found"), id: "people-results" });
  const more = h("p", { class: "muted", id: "people-more", hidden: true }, t("More colleagues match: type more of the name."));
  const picked = h("p", { class: "muted", id: "people-chosen" });
  const role = h("select", { id: "admit-role", name: "role" }, h("option", { value: "member" }, t(ROLES.member)), h("option", { value: "head" }, t(ROLES.head)));
  const admit = h("button", { type: "button", class: "primary", id: "admit-chosen", disabled: true, onclick: () => confirmAndAdmit() }, t("Admit and sign"));
  const progress = h("p", { id: "admit-progress", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert", id: "admit-error" });
  const dialog = h("dialog", { "aria-label": t("Confirm admissions"), id: "admit-dialog" });

  const drawChosen = () => {
    const names = [...chosen.values()].map((p) => p.display_name);
    picked.textContent = names.length ? t("Chosen: {names}", { names: names.join(", ") }) : "";
    admit.disabled = !names.length;
    admit.textContent = names.length > 1 ? t("Admit and sign {count} colleagues", { count: names.length }) : t("Admit and sign");
  };

  const drawResults = () => {
    results.replaceChildren(...shown.map((person) => {
      const member = members.isMember(person.id);
      const box = h("input", {
        type: "checkbox", id: `person-${person.id}`, dataset: { person: person.id },
        checked: chosen.has(person.id), disabled: member,
        onchange: () => {
          if (box.checked) chosen.set(person.id, person);
          else chosen.delete(person.id);
          drawChosen();
        },
      });
      return h("li", { class: "card", dataset: { name: person.display_name } },
        h("label", { for: `person-${person.id}`, class: "row" }, box,
          h("span", { class: "grow" }, h("strong", {}, person.display_name),
            h("div", { class: "sub" }, member ? t("Already a member · {departments}", { departments: departmentsLine(person) }) : departmentsLine(person)),
            h("div", { class: "sub" }, person.fingerprint ? t("Code {code}", { code: c.comparisonCode(person.fingerprint) }) : t("Has not set up keys yet")))));
    }));
  };

  let asked = 0;
  const search = async () => {
    const q = query.value.trim();
    const mine = ++asked;
    if (q.length < 2) {
      shown = [];
      more.hidden = true;
      drawResults();
      return;
    }
    try {
      /** @type {People} */
      const found = await post("/api/people/search", { q });
      if (mine !== asked) return; // a later search answers instead
      shown = found.people;
      more.hidden = !found.more;
      error.textContent = "";
      drawResults();
      if (!shown.length) results.append(h("li", { class: "muted" }, t("Nobody by that name.")));
    } catch (e) {
      if (mine === asked) error.textContent = explain(e);
    }
  };

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  query.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, SEARCH_DELAY_MS);
  });

  /**
   * The card: every colleague chosen, their departments and comparison code.
   * @param {Person[]} people
   * @param {"head" | "member"} roleCode
   * @returns {Promise<boolean>}
   */
  const confirm = (people, roleCode) => new Promise((resolve) => {
    const finish = (/** @type {boolean} */ value) => {
      dialog.close();
      resolve(value);
    };
    const go = h("button", { type: "button", class: "primary", id: "confirm-admit", onclick: () => finish(true) },
      people.length > 1 ? t("They match: admit and sign all {count}", { count: people.length }) : t("It matches: admit and sign"));
    dialog.replaceChildren(
      h("h2", {}, admitTitle(people, roleCode)),
      h("p", {}, t("Ask each colleague to open Rounds → My profile and read their comparison code aloud. Admit only if every code matches the one below.")),
      h("ul", { class: "list", "aria-label": t("To admit") }, people.map((person) => h("li", { class: "card stack", dataset: { confirm: person.id } },
        h("strong", {}, person.display_name),
        h("div", { class: "sub" }, departmentsLine(person)),
        person.fingerprint
          ? [h("p", { class: "fingerprint comparison", dataset: { codeFor: person.id } }, c.comparisonCode(person.fingerprint)),
            h("details", {}, h("summary", {}, t("Whole fingerprint")), h("p", { class: "fingerprint muted" }, c.groupFingerprint(person.fingerprint)))]
          : h("p", { class: "notice" }, t("No keys yet: admitted now, signed here once they have set up their keys."))))),
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => finish(false) }, t("Cancel")), go));
    dialog.addEventListener("cancel", () => resolve(false), { once: true });
    dialog.showModal();
    go.focus();
  });

  const confirmAndAdmit = async () => {
    const people = [...chosen.values()];
    const chosenRole = /** @type {"head" | "member"} */ (role.value); // the select's two options
    error.textContent = "";
    if (!people.length || !(await confirm(people, chosenRole))) return;
    admit.disabled = true;
    /** @type {string[]} */
    const done = [];
    /** @type {string[]} */
    const unsigned = [];
    for (const [index, person] of people.entries()) {
      progress.textContent = t("Admitting and signing {index} of {total}: {name}…", { index: index + 1, total: people.length, name: person.display_name });
      let admitted = false;
      try {
        await app.endToEnd.admit(departmentId, person.id, chosenRole, { fingerprint: null });
        admitted = true;
        chosen.delete(person.id);
        if (person.fingerprint) {
          await app.endToEnd.attest(departmentId, person.id, { fingerprint: person.fingerprint });
          // A newcomer reads the history: share the versions this device holds.
          await app.endToEnd.shareHistory(departmentId, person.id).catch(() => {});
          done.push(person.display_name);
        } else {
          unsigned.push(person.display_name);
        }
      } catch (e) {
        const rest = people.slice(index + 1).map((p) => p.display_name);
        const what = admitted
          ? t("{name} is admitted but their admission is not signed ({reason}); sign it in the list once you have compared again.", { name: person.display_name, reason: explain(e) })
          : t("{name} was not admitted: {reason}", { name: person.display_name, reason: explain(e) });
        const before = t("Admitted and signed before: {done}. Not admitted (nothing was done): {rest}.", { done: listed(done), rest: listed(rest) });
        error.textContent = `${what} ${before}`;
        error.dataset.code = /** @type {Refusal} */ (e).code ?? "";
        progress.textContent = t("Stopped at {index} of {total}.", { index: index + 1, total: people.length });
        drawChosen();
        await members.changed();
        drawResults();
        return;
      }
    }
    progress.textContent = t("Done: {count} of {total}.", { count: people.length, total: people.length });
    const said = [done.length ? t("{names} admitted and signed.", { names: listed(done) }) : "",
      unsigned.length ? t("{names} admitted; no keys yet, so sign their admission here once they have.", { names: listed(unsigned) }) : ""].join(" ").trim();
    toast(said);
    drawChosen();
    await members.changed();
    drawResults();
  };

  const el = h("form", {
    class: "card stack", id: "admit-form",
    onsubmit: (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      clearTimeout(timer);
      search();
    },
  },
  h("h2", {}, t("Admit colleagues")),
  h("div", {}, h("label", { for: "people-q" }, t("Colleague's name")), h("div", { class: "row" }, query, h("button", { type: "submit" }, t("Search")))),
  results, more, picked,
  h("div", {}, h("label", { for: "admit-role" }, t("Role")), role),
  h("p", { class: "muted" }, t("You will compare each colleague's code with them before anything is signed.")),
  admit, progress, error, dialog);
  return { el, redraw: drawResults };
}
