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
import { h, explain, dayTime, fullTime } from "../ui.js";
import { keywordPicker } from "./keywordpicker.js";

/** @import { SignedIn } from "../app.js" */
/** @import { PreparedPhoto } from "../photos/prepare.js" */
/** @import { Refusal } from "../types/api.js" */

/** @param {number} bytes */
function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/**
 * Open the sheet for a thread; resolves when it closes, true if photos were sent.
 * @param {import("../app.js").App} app
 * @param {number} threadId
 * @param {{camera?: boolean}} [options] camera: start the camera at once
 * @returns {Promise<boolean>}
 */
export function openPhotoSheet(app, threadId, { camera = false } = {}) {
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
  const previews = h("ul", { class: "previews", "aria-label": "Photos to send" });
  const fileInput = h("input", { type: "file", id: "photo-files", accept: "image/*", multiple: true, class: "visually-hidden" });
  const fileLabel = h("label", { for: "photo-files", class: "button" }, "Choose photos");
  const video = h("video", { class: "camera", playsinline: true, muted: true, autoplay: true, "aria-label": "Camera preview" });
  const captureButton = h("button", { type: "button", class: "primary", id: "capture" }, "Capture");
  const cameraArea = h("div", { class: "stack", hidden: true }, video,
    h("div", { class: "row" }, captureButton, h("button", { type: "button", onclick: () => stopCamera() }, "Close camera")));
  const canCamera = Boolean(navigator.mediaDevices?.getUserMedia);
  const cameraButton = canCamera ? h("button", { type: "button", id: "take-photo" }, "Take a photo") : null;
  const keywordArea = h("div", { class: "stack" }, h("p", { class: "loading" }, "Loading keywords…"));
  // Asked, never assumed: no scope is checked until the patient's is known.
  const consentNote = h("p", { class: "muted", id: "consent-note" }, "Ask the patient once; it is kept for their stay on this device.");
  const consent = h("fieldset", { class: "choices", id: "consent", "aria-describedby": "consent-note" }, h("legend", {}, "Consent"),
    CONSENTS.map(([value, label]) => h("label", { class: "chip" },
      h("input", { type: "radio", name: "consent", value }), label)), consentNote);
  const caption = h("textarea", { id: "photo-caption", rows: 2, maxlength: 2000, placeholder: "What should colleagues look at?" });
  const progress = h("progress", { id: "upload-progress", max: 100, value: 0, "aria-labelledby": "upload-status" });
  const progressText = h("p", { id: "upload-status", class: "muted", "aria-live": "polite" });
  const progressArea = h("div", { class: "stack", hidden: true }, progress, progressText);
  const send = h("button", { type: "submit", class: "primary", id: "send-photos", disabled: true }, "Send photos");
  const cancel = h("button", { type: "button", onclick: () => close() }, "Cancel");

  const form = h("form", { class: "stack", "aria-label": "Add photos" },
    // The hidden input just before its label: the CSS rings the label when the input has focus.
    h("div", { class: "row" }, cameraButton, fileInput, fileLabel), cameraArea, previews,
    // Consent before the keywords: it must be answered, and the usual keyword is at the top of its list.
    consent,
    h("fieldset", { class: "choices" }, h("legend", {}, "Keywords"), keywordArea),
    h("div", {}, h("label", { for: "photo-caption" }, "Caption (optional, encrypted)"), caption),
    h("div", { class: "sheet-footer" }, progressArea, error, h("div", { class: "row" }, cancel, send)));
  const dialog = h("dialog", { class: "sheet", "aria-labelledby": "sheet-title" },
    h("h2", { id: "sheet-title" }, "Add photos"),
    h("p", { class: "muted" }, "Photos are taken here, not in the phone's gallery; location and camera details are removed before they are encrypted."),
    form);

  const drawPreviews = () => {
    previews.replaceChildren(...chosen.map((photo, i) => h("li", { class: "preview" },
      h("img", { src: photo.url, alt: `Photo ${i + 1}` }),
      h("span", { class: "grow sub" }, photo.captured_at ? `Taken ${fullTime(photo.captured_at)}` : "No capture date", h("br"), `${photo.width} × ${photo.height}`),
      h("button", { type: "button", "aria-label": `Remove photo ${i + 1}`, disabled: busy, onclick: () => { chosen.splice(i, 1); drawPreviews(); } }, "Remove"))));
    send.disabled = busy || !chosen.length;
    send.textContent = chosen.length > 1 ? `Send ${chosen.length} photos` : "Send photo";
  };

  const add = async (/** @type {() => Promise<PreparedPhoto>} */ prepare) => {
    if (chosen.length >= MAX_PHOTOS) {
      error.textContent = `At most ${MAX_PHOTOS} photos in one message.`;
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
      error.textContent = "The camera is not available here. Choose a photo file instead.";
    }
  };
  const stopCamera = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    cameraArea.hidden = true;
  };
  cameraButton?.addEventListener("click", startCamera);
  // After a capture the photo, the consent and the usual keywords come into view (the
  // camera keeps running above them for another).
  captureButton.addEventListener("click", () => add(() => captureFrame(video)).then(() => previews.scrollIntoView({ block: "start" })));

  keywords().then((list) => keywordArea.replaceChildren(...keywordPicker(list, habits, userId))).catch((e) => keywordArea.replaceChildren(h("p", { class: "error" }, `Keywords could not be loaded: ${explain(e)}`)));

  if (patientId !== null) {
    app.session.patient(patientId).then((patient) => {
      ward = patient.ward;
      const given = rememberedConsent(habits, patientId, ward);
      const radio = given && /** @type {HTMLInputElement | null} */ (consent.querySelector(`input[value="${given.scope}"]`));
      if (!given || !radio || consent.querySelector("input:checked")) return;
      radio.checked = true;
      consentNote.textContent = `Given ${dayTime(new Date(given.at).toISOString())}, kept for this stay: change it if the patient has.`;
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
  dialog.addEventListener("cancel", (event) => busy && !confirm("Stop sending these photos?") && event.preventDefault());
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
      error.textContent = "Choose the consent the patient gave.";
      /** @type {HTMLInputElement} */ (consent.querySelector("input")).focus();
      return;
    }
    const scope = checked.value;
    busy = true;
    drawPreviews();
    error.textContent = "";
    progressArea.hidden = false;
    stopCamera();
    try {
      // Open from a conversation, so signed in.
      await sendPhotos(/** @type {SignedIn} */ (app), threadId, chosen, {
        keywords: codes, consent: scope, text: caption.value.trim(),
        onProgress: (sent, total, phase) => {
          if (cancelled) throw new DOMException("cancelled", "AbortError");
          const percent = Math.floor((100 * sent) / total);
          progress.value = percent;
          progressText.textContent = /** @type {Record<string, string>} */ ({
            encrypt: "Encrypting on this device…",
            upload: `Uploading ${percent}% (${megabytes(sent)} of ${megabytes(total)} MB)`,
            post: "Posting…",
          })[phase];
        },
      });
      busy = false;
      sent = true;
      rememberSent(userId, { keywords: codes, patientId, ward, consent: scope });
      close();
    } catch (e) {
      busy = false;
      if (/** @type {Refusal} */ (e).name === "AbortError") return;
      drawPreviews();
      error.textContent = `Not sent: ${explain(e)}`;
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  (cameraButton || fileLabel).focus();
  if (camera && canCamera) startCamera();
  return finished;
}
