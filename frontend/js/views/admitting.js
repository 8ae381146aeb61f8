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
import { explain, h, toast } from "../ui.js";

/** @import { People, Person, Refusal } from "../types/api.js" */

const SEARCH_DELAY_MS = 350;

/** @param {Person} person */
function departmentsLine(person) {
  if (!person.departments.length) return "In no department yet";
  return person.departments.map((d) => `${d.name}${d.role === "head" ? " (head)" : ""}`).join(" · ");
}

/** @param {string[]} names */
function listed(names) {
  return names.length ? names.join(", ") : "nobody";
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
  const query = h("input", { id: "people-q", name: "q", type: "search", autocomplete: "off", minlength: 2, maxlength: 100, placeholder: "e.g. Durand" });
  const results = h("ul", { class: "list", "aria-label": "Colleagues found", id: "people-results" });
  const more = h("p", { class: "muted", id: "people-more", hidden: true }, "More colleagues match: type more of the name.");
  const picked = h("p", { class: "muted", id: "people-chosen" });
  const role = h("select", { id: "admit-role", name: "role" }, h("option", { value: "member" }, "Member"), h("option", { value: "head" }, "Head"));
  const admit = h("button", { type: "button", class: "primary", id: "admit-chosen", disabled: true, onclick: () => confirmAndAdmit() }, "Admit and sign");
  const progress = h("p", { id: "admit-progress", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert", id: "admit-error" });
  const dialog = h("dialog", { "aria-label": "Confirm admissions", id: "admit-dialog" });

  const drawChosen = () => {
    const names = [...chosen.values()].map((p) => p.display_name);
    picked.textContent = names.length ? `Chosen: ${names.join(", ")}` : "";
    admit.disabled = !names.length;
    admit.textContent = names.length > 1 ? `Admit and sign ${names.length} colleagues` : "Admit and sign";
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
            h("div", { class: "sub" }, member ? `Already a member · ${departmentsLine(person)}` : departmentsLine(person)),
            h("div", { class: "sub" }, person.fingerprint ? `Code ${c.comparisonCode(person.fingerprint)}` : "Has not set up keys yet"))));
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
      if (!shown.length) results.append(h("li", { class: "muted" }, "Nobody by that name."));
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
   * @param {string} roleName
   * @returns {Promise<boolean>}
   */
  const confirm = (people, roleName) => new Promise((resolve) => {
    const finish = (/** @type {boolean} */ value) => {
      dialog.close();
      resolve(value);
    };
    const go = h("button", { type: "button", class: "primary", id: "confirm-admit", onclick: () => finish(true) },
      people.length > 1 ? `They match: admit and sign all ${people.length}` : "It matches: admit and sign");
    dialog.replaceChildren(
      h("h2", {}, people.length > 1 ? `Admit ${people.length} colleagues as ${roleName}` : `Admit ${people[0].display_name} as ${roleName}`),
      h("p", {}, "Ask each colleague to open Rounds → My profile and read their comparison code aloud. Admit only if every code matches the one below."),
      h("ul", { class: "list", "aria-label": "To admit" }, people.map((person) => h("li", { class: "card stack", dataset: { confirm: person.id } },
        h("strong", {}, person.display_name),
        h("div", { class: "sub" }, departmentsLine(person)),
        person.fingerprint
          ? [h("p", { class: "fingerprint comparison", dataset: { codeFor: person.id } }, c.comparisonCode(person.fingerprint)),
            h("details", {}, h("summary", {}, "Whole fingerprint"), h("p", { class: "fingerprint muted" }, c.groupFingerprint(person.fingerprint)))]
          : h("p", { class: "notice" }, "No keys yet: admitted now, signed here once they have set up their keys.")))),
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => finish(false) }, "Cancel"), go));
    dialog.addEventListener("cancel", () => resolve(false), { once: true });
    dialog.showModal();
    go.focus();
  });

  const confirmAndAdmit = async () => {
    const people = [...chosen.values()];
    const chosenRole = /** @type {"head" | "member"} */ (role.value); // the select's two options
    error.textContent = "";
    if (!people.length || !(await confirm(people, chosenRole === "head" ? "heads" : "members"))) return;
    admit.disabled = true;
    /** @type {string[]} */
    const done = [];
    /** @type {string[]} */
    const unsigned = [];
    for (const [index, person] of people.entries()) {
      progress.textContent = `Admitting and signing ${index + 1} of ${people.length}: ${person.display_name}…`;
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
          ? `${person.display_name} is admitted but their admission is not signed (${explain(e)}); sign it in the list once you have compared again.`
          : `${person.display_name} was not admitted: ${explain(e)}`;
        error.textContent = `${what} Admitted and signed before: ${listed(done)}. Not admitted (nothing was done): ${listed(rest)}.`;
        error.dataset.code = /** @type {Refusal} */ (e).code ?? "";
        progress.textContent = `Stopped at ${index + 1} of ${people.length}.`;
        drawChosen();
        await members.changed();
        drawResults();
        return;
      }
    }
    progress.textContent = `Done: ${people.length} of ${people.length}.`;
    const said = [done.length ? `${listed(done)} admitted and signed.` : "",
      unsigned.length ? `${listed(unsigned)} admitted; no keys yet, so sign their admission here once they have.` : ""].join(" ").trim();
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
  h("h2", {}, "Admit colleagues"),
  h("div", {}, h("label", { for: "people-q" }, "Colleague's name"), h("div", { class: "row" }, query, h("button", { type: "submit" }, "Search"))),
  results, more, picked,
  h("div", {}, h("label", { for: "admit-role" }, "Role"), role),
  h("p", { class: "muted" }, "You will compare each colleague's code with them before anything is signed."),
  admit, progress, error, dialog);
  return { el, redraw: drawResults };
}
