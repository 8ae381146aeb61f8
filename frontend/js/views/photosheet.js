// @ts-check
// Adding photos to a conversation: take them with the camera (a live
// preview in the page, captured to a canvas, so nothing is written to the
// phone's gallery) or pick files; choose keywords from the nomenclature and
// the consent scope; then encrypt, upload with a progress bar, and post.
// "Take photo" opens it with the camera already running. The keywords last
// used and starred come first, and the consent a patient gave is preset for
// their stay (photos/habits.js), so the usual photo is four or five taps.
import { loadHabits, rememberSent, rememberedConsent } from "../photos/habits.js";
import { PhotoRefused, captureFrame, preparePhoto } from "../photos/prepare.js";
import { CONSENTS, ImageUrls, MAX_PHOTOS, keywords, sendPhotos } from "../photos/photos.js";
import { locale, t, tn } from "../i18n.js";
import { h, explain, dayTime, fullTime } from "../ui.js";
import { keywordPicker } from "./keywordpicker.js";

/** @import { SignedIn } from "../app.js" */
/** @import { PreparedPhoto } from "../photos/prepare.js" */
/** @import { Posted, Refusal } from "../types/api.js" */
/** @typedef {{photos: PreparedPhoto[], keywords: string[], consent: string, text: string}} HeldPhotos photos chosen, not posted */

/** @param {number} bytes */
function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toLocaleString(locale(), { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

/**
 * Open the sheet for a thread; resolves when it closes, true if photos were sent.
 * @param {import("../app.js").App} app
 * @param {number} threadId
 * @param {{camera?: boolean, caption?: string, onSent?: (posted: Posted) => void, hold?: (held: HeldPhotos) => void}} [options]
 *   camera: start the camera at once; caption: the caption to start from; onSent: told the
 *   photo message's ack once posted (the ask-for-advice sheet makes it a request); hold:
 *   given the photos chosen instead of posting them (a consult's question, posted once it opens)
 * @returns {Promise<boolean>}
 */
export function openPhotoSheet(app, threadId, { camera = false, caption: startCaption = "", onSent, hold } = {}) {
  const urls = new ImageUrls();
  const userId = app.session.user.id;
  const habits = loadHabits(userId);
  const patientId = app.session.threads.get(threadId)?.patient ?? null;
  /** @type {string | null} */
  let ward = null;
  let sent = false;
  /** @type {(PreparedPhoto & {url?: string})[]} */
  const chosen = []; // prepared photos, with their thumbnail's blob: URL
  /** @type {MediaStream | null} */
  let stream = null;
  let busy = false;
  let cancelled = false;

  const error = h("p", { class: "error", role: "alert", id: "photo-error" });
  const previews = h("ul", { class: "previews", "aria-label": t("Photos to send") });
  const fileInput = h("input", { type: "file", id: "photo-files", accept: "image/*", multiple: true, class: "visually-hidden" });
  const fileLabel = h("label", { for: "photo-files", class: "button" }, t("Choose photos"));
  const video = h("video", { class: "camera", playsinline: true, muted: true, autoplay: true, "aria-label": t("Camera preview") });
  const captureButton = h("button", { type: "button", class: "primary", id: "capture" }, t("Capture"));
  const cameraArea = h("div", { class: "stack", hidden: true }, video,
    h("div", { class: "row" }, captureButton, h("button", { type: "button", onclick: () => stopCamera() }, t("Close camera"))));
  const canCamera = Boolean(navigator.mediaDevices?.getUserMedia);
  const cameraButton = canCamera ? h("button", { type: "button", id: "take-photo" }, t("Take a photo")) : null;
  const keywordArea = h("div", { class: "stack" }, h("p", { class: "loading" }, t("Loading keywords…")));
  // Asked, never assumed: no scope is checked until the patient's is known.
  const consentNote = h("p", { class: "muted", id: "consent-note" }, t("Ask the patient once; it is kept for their stay on this device."));
  const consent = h("fieldset", { class: "choices", id: "consent", "aria-describedby": "consent-note" }, h("legend", {}, t("Consent")),
    CONSENTS.map(([value, label]) => h("label", { class: "chip" },
      h("input", { type: "radio", name: "consent", value }), t(label))), consentNote);
  const caption = h("textarea", { id: "photo-caption", rows: 2, maxlength: 2000, placeholder: t("What should colleagues look at?") });
  caption.value = startCaption;
  const progress = h("progress", { id: "upload-progress", max: 100, value: 0, "aria-labelledby": "upload-status" });
  const progressText = h("p", { id: "upload-status", class: "muted", "aria-live": "polite" });
  const progressArea = h("div", { class: "stack", hidden: true }, progress, progressText);
  const send = h("button", { type: "submit", form: "photo-form", class: "primary", id: "send-photos", disabled: true }, t("Send photos"));
  const cancel = h("button", { type: "button", onclick: () => close() }, t("Cancel"));

  const form = h("form", { class: "stack", id: "photo-form", "aria-label": t("Add photos") },
    // The hidden input just before its label: the CSS rings the label when the input has focus.
    h("div", { class: "row" }, cameraButton, fileInput, fileLabel), cameraArea, previews,
    // Consent before the keywords: it must be answered, and the usual keyword is at the top of its list.
    consent,
    h("fieldset", { class: "choices" }, h("legend", {}, t("Keywords")), keywordArea),
    h("div", {}, h("label", { for: "photo-caption" }, t("Caption (optional, encrypted)")), caption));
  // The body scrolls and the footer (Send) stays below it, never over it: a control
  // scrolled to is never covered (SC 2.4.11), and Send is always in reach.
  const dialog = h("dialog", { class: "sheet", "aria-labelledby": "sheet-title" },
    h("div", { class: "sheet-body" },
      h("h2", { id: "sheet-title" }, t("Add photos")),
      h("p", { class: "muted" }, t("Photos are taken here, not in the phone's gallery; location and camera details are removed before they are encrypted.")),
      form),
    h("div", { class: "sheet-footer" }, progressArea, error, h("div", { class: "row" }, cancel, send)));

  const drawPreviews = () => {
    previews.replaceChildren(...chosen.map((photo, i) => h("li", { class: "preview" },
      h("img", { src: photo.url, alt: t("Photo {number}", { number: i + 1 }) }),
      h("span", { class: "grow sub" }, photo.captured_at ? t("Taken {time}", { time: fullTime(photo.captured_at) }) : t("No capture date"), h("br"), `${photo.width} × ${photo.height}`),
      h("button", { type: "button", "aria-label": t("Remove photo {number}", { number: i + 1 }), disabled: busy, onclick: () => { chosen.splice(i, 1); drawPreviews(); } }, t("Remove")))));
    send.disabled = busy || !chosen.length;
    send.textContent = chosen.length > 1 ? tn(chosen.length, "Send {count} photo", "Send {count} photos") : t("Send photo");
  };

  const add = async (/** @type {() => Promise<PreparedPhoto>} */ prepare) => {
    if (chosen.length >= MAX_PHOTOS) {
      error.textContent = t("At most {max} photos in one message.", { max: MAX_PHOTOS });
      return;
    }
    error.textContent = "";
    try {
      /** @type {PreparedPhoto & {url?: string}} */
      const photo = await prepare();
      photo.url = urls.local(photo.thumbnail);
      chosen.push(photo);
      drawPreviews();
    } catch (e) {
      error.textContent = e instanceof PhotoRefused ? e.message : explain(e);
    }
  };

  fileInput.addEventListener("change", async () => {
    for (const file of [...(fileInput.files ?? [])]) await add(() => preparePhoto(file));
    fileInput.value = "";
  });

  const startCamera = async () => {
    error.textContent = "";
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 3840 }, height: { ideal: 2160 } }, audio: false });
      if (!dialog.open) return stopCamera(); // closed while the camera was starting
      video.srcObject = stream;
      cameraArea.hidden = false;
      await video.play();
      captureButton.focus();
    } catch {
      stopCamera();
      error.textContent = t("The camera is not available here. Choose a photo file instead.");
    }
  };
  const stopCamera = () => {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    cameraArea.hidden = true;
  };
  cameraButton?.addEventListener("click", startCamera);
  // After a capture the photo, the consent and the usual keywords come into view (the
  // camera keeps running above them for another).
  captureButton.addEventListener("click", () => add(() => captureFrame(video)).then(() => previews.scrollIntoView({ block: "start" })));

  keywords().then((list) => keywordArea.replaceChildren(...keywordPicker(list, habits, userId))).catch((e) => keywordArea.replaceChildren(h("p", { class: "error" }, t("Keywords could not be loaded: {reason}", { reason: explain(e) }))));

  if (patientId !== null) {
    app.session.patient(patientId).then((patient) => {
      ward = patient.ward;
      const given = rememberedConsent(habits, patientId, ward);
      const radio = given && /** @type {HTMLInputElement | null} */ (consent.querySelector(`input[value="${given.scope}"]`));
      if (!given || !radio || consent.querySelector("input:checked")) return;
      radio.checked = true;
      consentNote.textContent = t("Given {time}, kept for this stay: change it if the patient has.", { time: dayTime(new Date(given.at).toISOString()) });
    }).catch(() => {}); // unknown patient: consent is simply asked
  }

  /** @type {(value: boolean) => void} */
  let done;
  /** @type {Promise<boolean>} */
  const finished = new Promise((resolve) => (done = resolve));
  const close = () => {
    cancelled = busy;
    if (dialog.open) dialog.close();
  };
  dialog.addEventListener("cancel", (event) => busy && !confirm(t("Stop sending these photos?")) && event.preventDefault());
  dialog.addEventListener("close", () => {
    stopCamera();
    urls.revoke();
    dialog.remove();
    done(sent);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy || !chosen.length) return;
    const codes = [.../** @type {NodeListOf<HTMLInputElement>} */ (form.querySelectorAll("input[name=keyword]:checked"))].map((i) => i.value);
    const checked = /** @type {HTMLInputElement | null} */ (form.querySelector("input[name=consent]:checked"));
    if (!checked) {
      error.textContent = t("Choose the consent the patient gave.");
      /** @type {HTMLInputElement} */ (consent.querySelector("input")).focus();
      return;
    }
    const scope = checked.value;
    if (hold) {
      hold({ photos: [...chosen], keywords: codes, consent: scope, text: caption.value.trim() });
      sent = true;
      rememberSent(userId, { keywords: codes, patientId, ward, consent: scope });
      close();
      return;
    }
    busy = true;
    drawPreviews();
    error.textContent = "";
    progressArea.hidden = false;
    stopCamera();
    try {
      // Open from a conversation, so signed in.
      const posted = await sendPhotos(/** @type {SignedIn} */ (app), threadId, chosen, {
        keywords: codes, consent: scope, text: caption.value.trim(),
        onProgress: (sent, total, phase) => {
          if (cancelled) throw new DOMException("cancelled", "AbortError");
          const percent = Math.floor((100 * sent) / total);
          progress.value = percent;
          progressText.textContent = /** @type {Record<string, string>} */ ({
            encrypt: t("Encrypting on this device…"),
            upload: t("Uploading {percent}% ({sent} of {total} MB)", { percent, sent: megabytes(sent), total: megabytes(total) }),
            post: t("Posting…"),
          })[phase];
        },
      });
      busy = false;
      sent = true;
      onSent?.(posted);
      rememberSent(userId, { keywords: codes, patientId, ward, consent: scope });
      close();
    } catch (e) {
      busy = false;
      if (/** @type {Refusal} */ (e).name === "AbortError") return;
      drawPreviews();
      error.textContent = t("Not sent: {reason}", { reason: explain(e) });
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  (cameraButton || fileLabel).focus();
  if (camera && canCamera) startCamera();
  return finished;
}
