// @ts-check
// Find an admitted patient by IPP, family name or birth date, or by
// scanning the label's barcode with the camera (BarcodeDetector, or the
// JavaScript decoder where it is missing: barcode.js); without a camera the
// IPP is typed. Criteria go in a POST body, never the URL.
import { post } from "../api.js";
import { barcodeReader } from "../barcode.js";
import { t, tn } from "../i18n.js";
import { h, explain, birthDate, dateField, isoDay, patientLabel } from "../ui.js";

/** @import { Patient } from "../types/api.js" */

/**
 * @param {(code: string) => void} onCode
 * @param {HTMLElement} area
 */
async function scanner(onCode, area) {
  const reader = await barcodeReader();
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  const video = h("video", { class: "scanner", playsinline: true, muted: true, "aria-label": t("Camera view of the patient label"), dataset: { engine: reader.engine } });
  video.srcObject = stream;
  area.dataset.engine = reader.engine; // which decoder read the label (support, tests): kept after it stops
  let running = true;
  const stop = () => {
    running = false;
    stream.getTracks().forEach((track) => track.stop());
    area.replaceChildren();
  };
  area.replaceChildren(video, h("button", { type: "button", onclick: stop }, t("Stop scanning")));
  await video.play();
  const tick = async () => {
    if (!running) return;
    try {
      const codes = await reader.detect(video);
      const text = codes.map((c) => c.trim()).find((v) => /^\d{6,12}$/.test(v));
      if (text) {
        stop();
        onCode(text);
        return;
      }
    } catch {
      // a frame that could not be read; try the next one
    }
    setTimeout(tick, 200);
  };
  tick();
  return stop;
}

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const ipp = h("input", { id: "ipp", name: "ipp", inputmode: "numeric", autocomplete: "off" });
  const name = h("input", { id: "name", name: "name", autocomplete: "off", spellcheck: "false" });
  const born = dateField({ id: "birth_date", name: "birth_date" });
  const results = h("ul", { class: "list", "aria-label": t("Patients found"), "aria-live": "polite" });
  const message = h("p", { role: "status", class: "muted" });
  const scanArea = h("div", { class: "stack", id: "scan-area" });
  /** @type {(() => void) | null} */
  let stopScan = null;

  const search = async () => {
    /** @type {{ipp?: string, name?: string, birth_date?: string}} */
    const criteria = {};
    if (ipp.value.trim()) criteria.ipp = ipp.value.trim();
    if (name.value.trim()) criteria.name = name.value.trim();
    const day = isoDay(born);
    if (day === null) {
      // Not a day: said, and not searched for (the field says so to assistive technology too).
      message.textContent = t("Type the date as dd/mm/yyyy.");
      born.focus();
      return;
    }
    if (day) criteria.birth_date = day;
    if (!Object.keys(criteria).length) {
      message.textContent = t("Enter an IPP, a name or a birth date.");
      return;
    }
    message.textContent = t("Searching…");
    try {
      /** @type {Patient[]} */
      const patients = await post("/api/patients/search", criteria);
      for (const p of patients) app.session.patients.set(p.id, p);
      message.textContent = patients.length
        ? tn(patients.length, "{count} admitted patient found.", "{count} admitted patients found.")
        : t("No admitted patient matches.");
      results.replaceChildren(...patients.map((p) => h("li", {}, h("a", { href: `#/p/${p.id}` },
        h("span", { class: "grow" }, h("strong", {}, patientLabel(p)),
          h("div", { class: "sub" }, t("Born {date} · {sex} · IPP {ipp}", { date: birthDate(p.birth_date), sex: p.sex, ipp: p.ipp })),
          h("div", { class: "sub" }, p.ward || ""))))));
    } catch (error) {
      message.textContent = explain(error);
    }
  };

  const canScan = Boolean(navigator.mediaDevices?.getUserMedia);
  const scan = h("button", {
    type: "button", id: "scan",
    onclick: async () => {
      try {
        stopScan = await scanner((code) => {
          ipp.value = code;
          name.value = "";
          born.value = "";
          search();
        }, scanArea);
      } catch {
        message.textContent = t("The camera is not available. Type the IPP from the label instead.");
        ipp.focus();
      }
    },
  }, t("Scan the label"));

  // Flagged once a search refused it, the date is checked again as it is corrected.
  born.addEventListener("input", () => born.hasAttribute("aria-invalid") && isoDay(born));
  // novalidate: search() checks the date and says what is wrong (a refused date would
  // otherwise block the next submission until the field is checked again).
  const form = h("form", { class: "card", novalidate: true, onsubmit: (/** @type {SubmitEvent} */ e) => { e.preventDefault(); search(); } },
    canScan ? scan : h("p", { class: "muted" }, t("No camera here: type the IPP printed on the label.")),
    scanArea,
    h("div", {}, h("label", { for: "ipp" }, t("IPP")), ipp),
    h("div", {}, h("label", { for: "name" }, t("Family name (start of)")), name),
    h("div", {}, h("label", { for: "birth_date" }, t("Birth date")), born),
    h("button", { class: "primary", type: "submit" }, t("Search")));
  const el = h("div", { class: "stack" }, form, message, results);
  return { el, title: t("Find a patient"), back: true, focus: canScan ? scan : ipp, unmount: () => stopScan?.() };
}
