// @ts-check
// The photo library: a grid of one patient's or one department's photos,
// filtered by capture date and keywords (AND), newest first, with "Load
// more" following the server's next_cursor. Each thumbnail is decrypted
// from its message (which the server serves with the item) and opens in the
// viewer, where two photos of the patient can be compared.
//
// A compliance officer names one of their review cases instead (a picker of
// the cases that release: `case` in the route and in every request, downloads
// included); the library then shows what the case covers, redacted photos
// too, each checked and decrypted with the conversation keys the case's review
// opened with the compliance key file (compliance/reader.js photoOf).
import { caseHeader, get } from "../api.js";
import { caseStatus } from "./compliance.js";
import { CONSENTS, ImageUrls, keywordLabel, keywords, openItem } from "../photos/photos.js";
import { h, dateField, dayTime, explain, isoDay, patientLabel } from "../ui.js";
import { N_, t, tn } from "../i18n.js";
import { openViewer } from "./viewer.js";

/** @import { App, SignedIn } from "../app.js" */
/** @import { Keyword } from "../photos/photos.js" */
/** @import { BodyPhoto, Case, LibraryItem, PhotoPage } from "../types/api.js" */

const PAGE = 30;
/** @type {Record<string, string>} */
const CATEGORIES = { site: N_("Site"), context: N_("Context") };
const ORDER = (/** @type {string} */ category) => /** @type {Record<string, number>} */ ({ site: 0, context: 1 })[category] ?? 2;

/**
 * One library item as a tile: thumbnail, date, keywords (and the patient when asked).
 * @param {App} app
 * @param {ImageUrls} urls
 * @param {LibraryItem} item
 * @param {{showPatient?: boolean, list?: Keyword[], open?: (app: SignedIn, item: LibraryItem) => BodyPhoto | Promise<BodyPhoto>}} [options]
 *   `list`: the keyword nomenclature, for the labels; `open`: the item's body photo
 *   (photos.js openItem, or a compliance officer's reader)
 */
export function libraryTile(app, urls, item, { showPatient = true, list = [], open = openItem } = {}) {
  const img = h("img", { alt: "" });
  const who = showPatient ? h("span", { class: "tile-patient" }, t("{patient} · IPP {ipp}", { patient: patientLabel(item.patient), ipp: item.patient.ipp })) : null;
  const taken = { patient: patientLabel(item.patient), time: dayTime(item.captured_at), keywords: item.keywords.map((k) => keywordLabel(list, k)).join(", ") };
  const tile = h("button", {
    "aria-label": item.keywords.length ? t("Photo of {patient} taken {time}, {keywords}", taken) : t("Photo of {patient} taken {time}", taken),
    type: "button", class: "tile", dataset: { upload: item.upload, patient: item.patient.id },
    onclick: async () => {
      try {
        const photo = await open(/** @type {SignedIn} */ (app), item);
        // Under a case there is no comparison: the patient's other photos are not the case's.
        openViewer(app, urls, { photo, senderName: app.session.displayName(item.department, item.sender), patient: open === openItem ? item.patient.id : null });
      } catch (error) {
        tile.querySelector(".tile-error")?.remove();
        tile.append(h("span", { class: "error tile-error" }, explain(error)));
      }
    },
  }, img, h("span", { class: "tile-date" }, dayTime(item.captured_at)), who,
  h("span", { class: "tile-tags" }, item.keywords.map((k) => keywordLabel(list, k)).join(" · ")));
  Promise.resolve().then(() => open(/** @type {SignedIn} */ (app), item)).then((photo) => urls.url(photo)).then((url) => {
    img.src = url;
    tile.classList.add("ready");
  }).catch((error) => {
    img.remove();
    tile.prepend(h("span", { class: "error tile-error" }, t("Refused: {reason}", { reason: explain(error) })));
  });
  return h("li", {}, tile);
}

/**
 * @param {import("../app.js").App} app
 * @param {URLSearchParams} query the `?a=b` part of the route
 */
export function render(app, query) {
  const state = app.session;
  const officer = Boolean(state.user.is_compliance_officer && app.reader);
  const caseId = officer ? Number(query.get("case")) || null : null;
  const urls = new ImageUrls({ caseId });
  const open = caseId ? (/** @type {unknown} */ _, /** @type {LibraryItem} */ item) => app.review.photoOf(item) : openItem;
  /** @type {HTMLSelectElement | null} */
  const casePicker = officer ? h("select", { id: "lib-case", name: "case", onchange: () => {
    const params = filters();
    params.delete("case");
    if (casePicker?.value) params.set("case", casePicker.value);
    app.go(`#/library${params.size ? `?${params}` : ""}`);
  } }, h("option", { value: "" }, app.keyState === "ready" ? t("My departments (no case)") : t("Choose a case…"))) : null;
  let patientId = Number(query.get("patient")) || null;
  // Page size: ?limit= in the route (1–200), for a slow link or a test of the cursor.
  const pageSize = Math.min(200, Math.max(1, Number(query.get("limit")) || PAGE));
  const department = h("select", { id: "lib-department", name: "department" },
    h("option", { value: "" }, t("All my departments")),
    [...state.departments.values()].map((d) => h("option", { value: d.id, selected: String(d.id) === query.get("department") }, d.name)));
  // Typed dd/mm/yyyy; kept as YYYY-MM-DD in the route and the requests.
  const dateFrom = dateField({ id: "lib-from", name: "date_from", value: query.get("date_from") || "" });
  const dateTo = dateField({ id: "lib-to", name: "date_to", value: query.get("date_to") || "" });
  // isoDay() marks a day that is not one invalid, which blocks the form: typing again lifts it.
  for (const day of [dateFrom, dateTo]) day.addEventListener("input", () => day.setCustomValidity(""));
  const consent = h("select", { id: "lib-consent", name: "consent" }, h("option", { value: "" }, t("Any consent")),
    CONSENTS.map(([value, label]) => h("option", { value, selected: value === query.get("consent") }, t(label))));
  const wanted = new Set(query.getAll("keyword"));
  const keywordArea = h("div", { class: "stack" }, h("p", { class: "loading" }, t("Loading keywords…")));
  const keywordSummary = h("summary", {}, t("Keywords"));
  const patientChip = h("div", { class: "patient-chip" });
  const grid = h("ul", { class: "grid", id: "library-grid", "aria-label": t("Photos"), "aria-live": "polite" });
  const status = h("p", { class: "muted", role: "status" });
  const more = h("button", { type: "button", id: "load-more", hidden: true }, t("Load more"));
  /** @type {Keyword[]} the keyword nomenclature, once loaded */
  let list = [];
  /** @type {string | null} */
  let cursor = null;
  let generation = 0;

  const filters = () => {
    const params = new URLSearchParams();
    if (caseId) params.set("case", String(caseId));
    if (patientId) params.set("patient", String(patientId));
    if (department.value) params.set("department", department.value);
    const from = isoDay(dateFrom);
    const to = isoDay(dateTo);
    if (from) params.set("date_from", from);
    if (to) params.set("date_to", to);
    if (consent.value) params.set("consent", consent.value);
    for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (keywordArea.querySelectorAll("input:checked"))) params.append("keyword", input.value);
    return params;
  };

  const drawSummary = () => {
    const n = keywordArea.querySelectorAll("input:checked").length;
    keywordSummary.textContent = n ? tn(n, "Keywords ({count} chosen, all required)", "Keywords ({count} chosen, all required)") : t("Keywords");
  };

  /** @param {{reset: boolean}} options reset: from the first page, with the filters as they are now */
  const load = async ({ reset }) => {
    if (isoDay(dateFrom) === null || isoDay(dateTo) === null) {
      status.textContent = t("Type the date as dd/mm/yyyy."); // nothing searched with a day that is not one
      return;
    }
    const mine = reset ? ++generation : generation;
    const params = filters();
    if (reset) {
      history.replaceState(null, "", `#/library${params.size ? `?${params}` : ""}`);
      grid.replaceChildren();
      cursor = null;
    }
    if (officer && !caseId && app.keyState !== "ready") {
      status.textContent = t("Choose the case this look is made under: the library shows what it covers.");
      return;
    }
    params.delete("case"); // the app's route keeps it; a request names it in its header, never its URL
    params.set("limit", String(pageSize));
    if (cursor) params.set("cursor", cursor);
    status.textContent = t("Loading…");
    more.disabled = true;
    try {
      /** @type {PhotoPage} */
      const page = await get(`/api/library/photos?${params}`, caseHeader(caseId));
      if (mine !== generation) return;
      grid.append(...page.items.map((item) => libraryTile(app, urls, item, { showPatient: !patientId, list, open })));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      const shown = grid.children.length;
      if (!shown) status.textContent = t("No photo matches these filters.");
      else status.textContent = cursor ? tn(shown, "{count} photo, more below.", "{count} photos, more below.") : tn(shown, "{count} photo.", "{count} photos.");
    } catch (error) {
      status.textContent = explain(error);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", () => load({ reset: false }));

  const drawPatient = async () => {
    if (!patientId) {
      patientChip.replaceChildren();
      return;
    }
    const chip = h("span", { class: "grow", id: "lib-patient" }, t("Patient…"));
    patientChip.replaceChildren(chip, h("button", { type: "button", onclick: () => {
      patientId = null;
      drawPatient();
      load({ reset: true });
    } }, t("All patients")));
    if (caseId) {
      chip.textContent = t("Patient no. {number}", { number: patientId }); // an officer reads patients through the case only
      return;
    }
    try {
      const p = await state.patient(patientId);
      chip.textContent = t("Patient: {patient} · IPP {ipp}", { patient: patientLabel(p), ipp: p.ipp });
      app.retitle(el, t("Photos — {patient}", { patient: patientLabel(p) }));
    } catch (error) {
      chip.textContent = explain(error);
    }
  };

  const active = ["department", "date_from", "date_to", "consent", "keyword"].some((k) => query.has(k));
  const form = h("form", { class: "stack", "aria-label": t("Filters"), onsubmit: (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    load({ reset: true });
  } },
  h("div", { class: "row" },
    h("div", {}, h("label", { for: "lib-department" }, t("Department")), department),
    h("div", {}, h("label", { for: "lib-consent" }, t("Consent")), consent)),
  h("div", { class: "row" },
    h("div", {}, h("label", { for: "lib-from" }, t("Taken from")), dateFrom),
    h("div", {}, h("label", { for: "lib-to" }, t("Taken until")), dateTo)),
  h("details", { class: "keywords", open: query.has("keyword") }, keywordSummary, keywordArea),
  h("button", { type: "submit", class: "primary" }, t("Show photos")));
  // With a patient chosen, the grid comes first on a phone; the filters are a tap away.
  if (casePicker) {
    get("/api/compliance/cases").then((/** @type {Case[]} */ cases) => {
      const releasing = cases.filter((item) => caseStatus(item)[0] === "open" && item.opened_by?.id === state.user.id);
      casePicker.append(...releasing.map((item) => h("option", { value: item.id, selected: item.id === caseId }, `${item.reference} — ${item.reason.slice(0, 60)}`)));
    }).catch((error) => (status.textContent = explain(error)));
  }
  const caseBox = casePicker ? h("div", {}, h("label", { for: "lib-case" }, t("Review case")), casePicker) : null;
  const filterBox = h("div", { class: "card stack" }, caseBox, patientChip,
    h("details", { class: "filters", open: !patientId || active }, h("summary", {}, t("Filters: dates, keywords, consent")), form));

  keywords().then((terms) => {
    list = terms;
    const groups = new Map();
    for (const k of terms) {
      if (!groups.has(k.category)) groups.set(k.category, []);
      groups.get(k.category).push(k);
    }
    keywordArea.replaceChildren(...[...groups].sort((a, b) => ORDER(a[0]) - ORDER(b[0])).map(([category, items]) => h("fieldset", { class: "choices" },
      h("legend", {}, CATEGORIES[category] ? t(CATEGORIES[category]) : category),
      h("div", { class: "chips" }, items.map((/** @type {Keyword} */ k) => h("label", { class: "chip" },
        h("input", { type: "checkbox", name: "keyword", value: k.code, checked: wanted.has(k.code), onchange: drawSummary }), k.label))))));
    drawSummary();
  }).catch((error) => keywordArea.replaceChildren(h("p", { class: "error" }, explain(error)))).finally(() => load({ reset: true }));
  drawPatient();

  const el = h("div", { class: "stack" }, filterBox, status, grid, more);
  return { el, title: t("Photo library"), back: true, unmount: () => urls.revoke() };
}
