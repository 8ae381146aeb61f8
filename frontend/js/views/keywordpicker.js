// @ts-check
// The photo sheet's keywords: the user's favourites and last used first, so
// the usual photo needs one tap; then a search box that filters every
// keyword; then the whole nomenclature by category. Each keyword is one
// check box wherever it is shown (a favourite is moved to the top, not
// copied), and only the institution's codes are offered: a remembered code
// the nomenclature no longer has is dropped.
import { toggleFavourite } from "../photos/habits.js";
import { N_, t } from "../i18n.js";
import { h } from "../ui.js";

/** @import { Keyword } from "../photos/photos.js" */
/** @import { Habits } from "../photos/habits.js" */

// The nomenclature's categories are codes; their names are the interface's (keywords
// themselves are the institution's vocabulary, shown as it writes them).
/** @type {Record<string, string>} */
const CATEGORIES = { site: N_("Site"), context: N_("Context") };
// Where on the body first, then why the photo was taken; unknown categories last.
const ORDER = (/** @type {string} */ category) => /** @type {Record<string, number>} */ ({ site: 0, context: 1 })[category] ?? 2;

/** Lower case without accents, so "oedeme" finds "Œdème" and "plaie" finds "Plaie". */
const fold = (/** @type {string} */ text) => text.normalize("NFKD").replace(/\p{M}/gu, "").replace(/œ/gi, "oe").toLowerCase();

/**
 * @param {Keyword[]} list the nomenclature
 * @param {Habits} habits
 * @param {number} userId
 * @returns {HTMLElement[]} the parts, in order, for the Keywords fieldset
 */
export function keywordPicker(list, habits, userId) {
  /** @type {Map<string, HTMLElement>} */
  const chips = new Map(list.map((k) => [k.code, h("label", { class: "chip", dataset: { keyword: fold(`${k.label} ${k.code}`) } },
    h("input", { type: "checkbox", name: "keyword", value: k.code }), k.label)]));
  const labels = new Map(list.map((k) => [k.code, k.label]));
  const top = [...new Set([...habits.favourites, ...habits.recent])].filter((code) => chips.has(code));

  const star = (/** @type {string} */ code) => {
    const on = habits.favourites.includes(code);
    const button = h("button", {
      type: "button", class: "star", "aria-pressed": String(on), "aria-label": t("Favourite: {keyword}", { keyword: labels.get(code) }),
      onclick: () => {
        const now = toggleFavourite(userId, code);
        button.setAttribute("aria-pressed", String(now));
        button.textContent = now ? "★" : "☆";
      },
    }, on ? "★" : "☆");
    return button;
  };
  const mine = top.length ? h("fieldset", { class: "choices", id: "keywords-mine" }, h("legend", {}, t("Favourites and recent")),
    h("div", { class: "chips" }, top.map((code) => h("span", { class: "chip-pair" }, chips.get(code), star(code))))) : null;

  const groups = new Map();
  for (const k of list) {
    if (top.includes(k.code)) continue;
    if (!groups.has(k.category)) groups.set(k.category, []);
    groups.get(k.category).push(chips.get(k.code));
  }
  const categories = [...groups].sort((a, b) => ORDER(a[0]) - ORDER(b[0])).map(([category, items]) =>
    h("fieldset", { class: "choices" }, h("legend", {}, CATEGORIES[category] ? t(CATEGORIES[category]) : category), h("div", { class: "chips" }, items)));

  const none = h("p", { class: "muted", hidden: true, role: "status" }, t("No keyword of the nomenclature matches."));
  const search = h("input", { type: "search", id: "keyword-search", autocomplete: "off", spellcheck: "false", placeholder: t("e.g. hand, wound") });
  search.addEventListener("input", () => {
    const query = fold(search.value.trim());
    let shown = 0;
    for (const chip of chips.values()) {
      // A checked keyword stays in sight, so a search never hides what will be sent.
      const keep = !query || (chip.dataset.keyword ?? "").includes(query) || Boolean(chip.querySelector("input:checked"));
      const holder = chip.parentElement?.classList.contains("chip-pair") ? chip.parentElement : chip;
      holder.hidden = !keep;
      if (keep) shown++;
    }
    for (const fieldset of [mine, ...categories]) {
      if (fieldset) fieldset.hidden = !fieldset.querySelector(".chips > :not([hidden])");
    }
    none.hidden = shown > 0;
  });
  return [
    ...(mine ? [mine] : []),
    h("div", { class: "keyword-search" }, h("label", { for: "keyword-search" }, t("Search keywords")), search),
    none, ...categories,
  ];
}
