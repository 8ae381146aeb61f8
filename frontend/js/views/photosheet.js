// @ts-check
// Adding photos to a conversation: take them with the camera (a live
// preview in the page, captured to a canvas, so nothing is written to the
// phone's gallery) or pick files; choose keywords from the nomenclature and
// the consent scope; then encrypt, upload with a progress bar, and post.
import { PhotoRefused, captureFrame, preparePhoto } from "../photos/prepare.js";
import { CONSENTS, ImageUrls, MAX_PHOTOS, keywords, sendPhotos } from "../photos/photos.js";
import { h, explain, fullTime } from "../ui.js";

/** @import { SignedIn } from "../app.js" */
/** @import { Keyword } from "../photos/photos.js" */
/** @import { PreparedPhoto } from "../photos/prepare.js" */
/** @import { Refusal } from "../types/api.js" */

/** @type {Record<string, string>} */
const CATEGORIES = { site: "Site", context: "Context" };
// Where on the body first, then why the photo was taken; unknown categories last.
const ORDER = (/** @type {string} */ category) => /** @type {Record<string, number>} */ ({ site: 0, context: 1 })[category] ?? 2;

/** @param {number} bytes */
function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/**
 * Open the sheet for a thread; resolves when it closes.
 * @param {import("../app.js").App} app
 * @param {number} threadId
 * @returns {Promise<void>}
 */
export function openPhotoSheet(app, threadId) {
  const urls = new ImageUrls();
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
  const consent = h("fieldset", { class: "choices" }, h("legend", {}, "Consent"),
    CONSENTS.map(([value, label], i) => h("label", { class: "chip" },
      h("input", { type: "radio", name: "consent", value, checked: i === 0 }), label)));
  const caption = h("textarea", { id: "photo-caption", rows: 2, maxlength: 2000, placeholder: "What should colleagues look at?" });
  const progress = h("progress", { id: "upload-progress", max: 100, value: 0, "aria-labelledby": "upload-status" });
  const progressText = h("p", { id: "upload-status", class: "muted", "aria-live": "polite" });
  const progressArea = h("div", { class: "stack", hidden: true }, progress, progressText);
  const send = h("button", { type: "submit", class: "primary", id: "send-photos", disabled: true }, "Send photos");
  const cancel = h("button", { type: "button", onclick: () => close() }, "Cancel");

  const form = h("form", { class: "stack", "aria-label": "Add photos" },
    // The hidden input just before its label: the CSS rings the label when the input has focus.
    h("div", { class: "row" }, cameraButton, fileInput, fileLabel), cameraArea, previews,
    h("fieldset", { class: "choices" }, h("legend", {}, "Keywords"), keywordArea),
    consent,
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

  const stopCamera = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    cameraArea.hidden = true;
  };
  cameraButton?.addEventListener("click", async () => {
    error.textContent = "";
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 3840 }, height: { ideal: 2160 } }, audio: false });
      video.srcObject = stream;
      cameraArea.hidden = false;
      await video.play();
      captureButton.focus();
    } catch {
      stopCamera();
      error.textContent = "The camera is not available here. Choose a photo file instead.";
    }
  });
  captureButton.addEventListener("click", () => add(() => captureFrame(video)));

  keywords().then((list) => {
    const groups = new Map();
    for (const k of list) {
      if (!groups.has(k.category)) groups.set(k.category, []);
      groups.get(k.category).push(k);
    }
    keywordArea.replaceChildren(...[...groups].sort((a, b) => ORDER(a[0]) - ORDER(b[0])).map(([category, terms]) => h("fieldset", { class: "choices" },
      h("legend", {}, CATEGORIES[category] || category),
      h("div", { class: "chips" }, terms.map((/** @type {Keyword} */ k) => h("label", { class: "chip" },
        h("input", { type: "checkbox", name: "keyword", value: k.code }), k.label))))));
  }).catch((e) => keywordArea.replaceChildren(h("p", { class: "error" }, `Keywords could not be loaded: ${explain(e)}`)));

  /** @type {(value: void) => void} */
  let done;
  /** @type {Promise<void>} */
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
    done();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy || !chosen.length) return;
    const codes = [.../** @type {NodeListOf<HTMLInputElement>} */ (form.querySelectorAll("input[name=keyword]:checked"))].map((i) => i.value);
    const scope = /** @type {HTMLInputElement} */ (form.querySelector("input[name=consent]:checked")).value;
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
  return finished;
}
