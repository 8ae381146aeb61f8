// @ts-check
// The photo viewer and the comparison (side by side, or one over the other with a
// slider on a phone): full-screen dialogs
// (Escape closes, focus stays inside), zoom by buttons, keys (+ − 0),
// ctrl + wheel and pinch, pan by dragging or with the arrow keys.
// Images are decrypted blobs shown through the caller's ImageUrls.
import { get } from "../api.js";
import { consentLabel, keywordLabel, keywords, openItem } from "../photos/photos.js";
import { recordAction } from "../photos/fhir.js";
import { locale, t, tn } from "../i18n.js";
import { h, dayTime, explain, fullTime } from "../ui.js";

/** @import { App, SignedIn } from "../app.js" */
/** @import { ImageUrls, Keyword } from "../photos/photos.js" */
/** @import { BodyPhoto, PhotoPage } from "../types/api.js" */

/**
 * A photo on screen: a body photo, who sent it, and its patient (the comparison's).
 * @typedef {{photo: BodyPhoto, senderName?: string, patient?: number | null, department?: number}} Shown
 */

const MIN_ZOOM = 1;
const MAX_ZOOM = 8;
// The close button's sign (its name, "Close", is translated): the same in every language.
const CLOSE_SIGN = "×";

/**
 * A zoomable image in a scrollable stage; returns {el, img, setZoom, zoom}.
 * @param {string} label translated
 * @param {(zoom: number) => void} [onZoom]
 */
function zoomStage(label, onZoom = () => {}) {
  const img = h("img", { alt: label, draggable: "false" });
  const stage = h("div", { class: "stage", tabindex: 0, role: "group", "aria-label": t("{label}. Arrow keys move the zoomed photo.", { label }) }, img);
  let zoom = 1;
  const fitWidth = () => {
    if (!img.naturalWidth) return 0;
    const fit = Math.min(stage.clientWidth / img.naturalWidth, stage.clientHeight / img.naturalHeight, 1);
    return img.naturalWidth * fit;
  };
  const setZoom = (/** @type {number} */ value, cx = stage.clientWidth / 2, cy = stage.clientHeight / 2) => {
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, value));
    const ratio = next / zoom;
    // Keep the point under the fingers (or the centre) where it is.
    const x = stage.scrollLeft + cx;
    const y = stage.scrollTop + cy;
    zoom = next;
    img.style.width = `${fitWidth() * zoom}px`;
    stage.scrollLeft = x * ratio - cx;
    stage.scrollTop = y * ratio - cy;
    stage.dataset.zoom = zoom.toFixed(2);
    onZoom(zoom);
  };
  img.addEventListener("load", () => setZoom(zoom));
  const resize = new ResizeObserver(() => setZoom(zoom));
  resize.observe(stage);
  stage.addEventListener("wheel", (event) => {
    if (!event.ctrlKey) return;
    event.preventDefault();
    const box = stage.getBoundingClientRect();
    setZoom(zoom * Math.exp(-event.deltaY / 300), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });
  // One pointer pans, two pinch (touch-action: none in the CSS).
  /** @type {Map<number, {x: number, y: number}>} */
  const pointers = new Map();
  /** @type {{distance: number, zoom: number} | null} */
  let pinch = null;
  stage.addEventListener("pointerdown", (event) => {
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    stage.setPointerCapture(event.pointerId);
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = { distance: Math.hypot(a.x - b.x, a.y - b.y), zoom };
    }
  });
  stage.addEventListener("pointermove", (event) => {
    const last = pointers.get(event.pointerId);
    if (!last) return;
    const now = { x: event.clientX, y: event.clientY };
    pointers.set(event.pointerId, now);
    if (pointers.size === 2 && pinch) {
      const [a, b] = [...pointers.values()];
      const box = stage.getBoundingClientRect();
      setZoom(pinch.zoom * Math.hypot(a.x - b.x, a.y - b.y) / (pinch.distance || 1), (a.x + b.x) / 2 - box.left, (a.y + b.y) / 2 - box.top);
    } else if (pointers.size === 1) {
      stage.scrollLeft -= now.x - last.x;
      stage.scrollTop -= now.y - last.y;
    }
  });
  const up = (/** @type {PointerEvent} */ event) => {
    pointers.delete(event.pointerId);
    if (pointers.size < 2) pinch = null;
  };
  stage.addEventListener("pointerup", up);
  stage.addEventListener("pointercancel", up);
  stage.addEventListener("keydown", (event) => {
    if (["+", "="].includes(event.key)) setZoom(zoom * 1.5);
    else if (event.key === "-") setZoom(zoom / 1.5);
    else if (event.key === "0") setZoom(1);
    else return;
    event.preventDefault();
  });
  return { el: stage, img, setZoom: (/** @type {number} */ v) => setZoom(v), zoom: () => zoom, stop: () => resize.disconnect() };
}

/** @param {ReturnType<typeof zoomStage>[]} stages zoomed together */
function zoomButtons(stages) {
  // The locale's way: "150%", "150 %".
  const percent = new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 });
  const level = h("span", { class: "zoom-level", "aria-live": "polite" }, percent.format(1));
  const apply = (/** @type {number | null} */ factor) => {
    for (const s of stages) s.setZoom(factor === null ? 1 : s.zoom() * factor);
    level.textContent = percent.format(stages[0].zoom());
  };
  return {
    level,
    buttons: [
      h("button", { type: "button", "aria-label": t("Zoom out"), onclick: () => apply(1 / 1.5) }, "−"),
      level,
      h("button", { type: "button", "aria-label": t("Zoom in"), onclick: () => apply(1.5) }, "+"),
      h("button", { type: "button", onclick: () => apply(null) }, t("Fit")),
    ],
    update: () => (level.textContent = percent.format(stages[0].zoom())),
  };
}

/** @param {Shown} shown @param {Keyword[]} list the nomenclature */
function describe(shown, list) {
  const p = shown.photo;
  const time = p.captured_at ? fullTime(p.captured_at) : null;
  const name = shown.senderName;
  let line;
  if (time) line = name ? t("Taken {time} by {name}", { time, name }) : t("Taken {time}", { time });
  else line = name ? t("Capture date unknown by {name}", { name }) : t("Capture date unknown");
  // Keywords are the institution's words, listed as they are.
  return line + (p.keywords?.length ? ` · ${p.keywords.map((k) => keywordLabel(list, k)).join(", ")}` : "");
}

/** A photo's name for assistive technology: when it was taken. @param {Shown} shown */
function takenLabel(shown) {
  const at = shown.photo.captured_at;
  return at ? t("Photo taken {time}", { time: fullTime(at) }) : t("Photo taken at an unknown date");
}

/**
 * @param {string} className
 * @param {string} label translated
 * @param {unknown[]} children as ui.js h takes them
 * @param {() => void} onClose
 */
function modal(className, label, children, onClose) {
  const dialog = h("dialog", { class: `viewer ${className}`, "aria-label": label }, ...children);
  dialog.addEventListener("close", () => {
    onClose();
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/**
 * Show one photo full screen.
 * @param {App} app
 * @param {ImageUrls} urls the calling view's (revoked when that view leaves)
 * @param {Shown} shown
 */
export async function openViewer(app, urls, shown) {
  const list = await keywords().catch(() => []);
  const stage = zoomStage(takenLabel(shown), () => zoom.update());
  const zoom = zoomButtons([stage]);
  const status = h("p", { class: "muted", role: "status" }, t("Decrypting…"));
  const compare = shown.patient ? h("button", { type: "button", id: "compare", onclick: () => pickComparison(app, urls, shown, dialog) }, t("Compare")) : null;
  const close = h("button", { type: "button", class: "primary close", "aria-label": t("Close"), onclick: () => dialog.close() }, CLOSE_SIGN);
  const meta = h("div", { class: "viewer-meta" },
    h("p", {}, describe(shown, list)),
    h("p", { class: "muted" }, t("Consent: {consent} · {width} × {height}", { consent: consentLabel(shown.photo.consent), width: shown.photo.width, height: shown.photo.height })),
    status,
    // Sending to the patient record is a clinician's act, never a compliance read.
    app.session.user.is_compliance_officer ? null : recordAction(shown.photo));
  const dialog = modal("single", t("Photo"), [
    h("div", { class: "viewer-bar" }, ...zoom.buttons, compare, close),
    stage.el, meta,
  ], () => stage.stop());
  close.focus();
  try {
    stage.img.src = await urls.url(shown.photo, { thumbnail: false });
    await stage.img.decode().catch(() => {});
    status.textContent = "";
    stage.el.focus();
  } catch (error) {
    status.textContent = t("This photo cannot be shown: {reason}", { reason: explain(error) });
    status.className = "error";
  }
  return dialog;
}

/**
 * Pick another photo of the same patient, then show both side by side.
 * @param {App} app
 * @param {ImageUrls} urls
 * @param {Shown} shown
 * @param {HTMLDialogElement} viewer the photo's, closed once the other is chosen
 */
async function pickComparison(app, urls, shown, viewer) {
  const grid = h("ul", { class: "grid", "aria-label": t("Photos of this patient") });
  const status = h("p", { class: "muted", role: "status" }, t("Loading the patient's photos…"));
  const dialog = modal("picker", t("Compare with"), [
    h("div", { class: "viewer-bar" }, h("h2", { class: "grow" }, t("Compare with…")), h("button", { type: "button", onclick: () => dialog.close() }, t("Cancel"))),
    status, grid,
  ], () => {});
  try {
    /** @type {PhotoPage} */
    const page = await get(`/api/library/photos?patient=${shown.patient}&limit=60`);
    const others = page.items.filter((item) => item.upload !== shown.photo.upload);
    status.textContent = others.length ? t("Choose the photo to compare with.") : t("No other photo of this patient.");
    for (const item of others) {
      const img = h("img", { alt: "" });
      const button = h("button", {
        // Its name holds the date it shows (SC 2.5.3), as the review's tiles do.
        type: "button", class: "tile", "aria-label": t("Photo taken {time}", { time: dayTime(item.captured_at) }),
        onclick: async () => {
          try {
            const photo = await openItem(/** @type {SignedIn} */ (app), item);
            dialog.close();
            viewer.close();
            openComparison(app, urls, [shown, { photo, senderName: app.session.displayName(item.department, item.sender), patient: shown.patient }]);
          } catch (error) {
            status.textContent = explain(error);
          }
        },
      }, img, h("span", { class: "tile-date" }, dayTime(item.captured_at)));
      grid.append(h("li", {}, button));
      openItem(/** @type {SignedIn} */ (app), item).then((photo) => urls.url(photo)).then((url) => (img.src = url)).catch(() => (img.alt = t("Cannot be shown")));
    }
  } catch (error) {
    status.textContent = explain(error);
  }
}

/**
 * Two photos side by side, oldest first, zoomed together, each with its date.
 * @param {App} app
 * @param {ImageUrls} urls
 * @param {Shown[]} pair
 */
export async function openComparison(app, urls, pair) {
  const list = await keywords().catch(() => []);
  const ordered = [...pair].sort((a, b) => String(a.photo.captured_at).localeCompare(String(b.photo.captured_at)));
  const stages = ordered.map((s) => zoomStage(takenLabel(s), () => zoom?.update()));
  const zoom = zoomButtons(stages);
  const days = (/** @type {string} */ a, /** @type {string} */ b) => Math.round((new Date(b).getTime() - new Date(a).getTime()) / 86400000);
  const gap = ordered[0].photo.captured_at && ordered[1].photo.captured_at ? days(ordered[0].photo.captured_at, ordered[1].photo.captured_at) : null;
  const panes = ordered.map((s, i) => h("figure", { class: "pane" }, stages[i].el,
    h("figcaption", {}, h("strong", {}, s.photo.captured_at ? dayTime(s.photo.captured_at) : t("Date unknown")),
      i === 1 && gap !== null ? [" · ", tn(gap, "{count} day later", "{count} days later")] : "",
      h("span", { class: "muted" }, ` ${(s.photo.keywords || []).map((k) => keywordLabel(list, k)).join(", ")}`))));
  const close = h("button", { type: "button", class: "primary close", "aria-label": t("Close"), onclick: () => dialog.close() }, CLOSE_SIGN);
  // On a phone (the CSS's max-width: 599px) the later photo lies over the earlier one at
  // full width, shown right of the slider's line; the arrow keys move the slider.
  const area = h("div", { class: "panes" }, ...panes);
  const split = h("input", { type: "range", id: "compare-split", min: 0, max: 100, step: 1, value: 50 });
  const showSplit = () => {
    const at = Number(split.value);
    area.style.setProperty("--split", `${at}%`);
    split.setAttribute("aria-valuetext", t("Earlier photo left of {at}% of the width, later photo right of it", { at }));
  };
  split.addEventListener("input", showSplit);
  showSplit();
  const overlaid = matchMedia("(max-width: 599px)");
  // Laid over each other, the two photos pan together.
  for (const [i, stage] of stages.entries()) {
    stage.el.addEventListener("scroll", () => {
      if (!overlaid.matches) return;
      const other = stages[1 - i].el;
      other.scrollLeft = stage.el.scrollLeft;
      other.scrollTop = stage.el.scrollTop;
    });
  }
  const dialog = modal("compare", t("Compare two photos"), [
    h("div", { class: "viewer-bar" }, ...zoom.buttons, close),
    area,
    h("div", { class: "split" }, h("label", { for: "compare-split" }, t("Earlier photo ◂ slide ▸ later photo")), split),
  ], () => stages.forEach((s) => s.stop()));
  close.focus();
  await Promise.all(ordered.map(async (s, i) => {
    try {
      stages[i].img.src = await urls.url(s.photo, { thumbnail: false });
    } catch (error) {
      stages[i].img.alt = t("Cannot be shown: {reason}", { reason: explain(error) });
    }
  }));
  return dialog;
}
