// @ts-check
// A patient: their conversations in my departments, starting one, and their
// photo follow-up report, made on this device (photos/report.js). "Take
// photo" opens the camera at once, for the patient's latest open
// conversation or, without one, for the conversation the form below would
// start (so the photo is never more than a tap away once the patient is found).
import { get, post } from "../api.js";
import { makeReport } from "../photos/report.js";
import { h, explain, birthDate, patientLabel, shortTime } from "../ui.js";
import { openPhotoSheet } from "./photosheet.js";

/** @import { Thread } from "../types/api.js" */

/**
 * @param {import("../app.js").App} app
 * @param {number} patientId
 */
export function render(app, patientId) {
  const header = h("div", { class: "card" }, h("p", { class: "loading" }, "Loading…"));
  const list = h("ul", { class: "list", "aria-label": "Conversations about this patient" });
  const error = h("p", { class: "error", role: "alert" });
  const departments = [...app.session.departments.values()];
  const select = h("select", { id: "department", name: "department" }, departments.map((d) => h("option", { value: d.id }, d.name)));
  const title = h("input", { id: "thread-title", name: "title", maxlength: 200, required: true, value: "Wound review" });
  const start = async () => {
    /** @type {Thread} */
    const thread = await post("/api/threads", { department: Number(select.value), patient: patientId, title: title.value.trim() || "Wound review" });
    app.session.threads.set(thread.id, thread);
    return thread;
  };
  const create = h("form", {
    class: "card",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        app.go(`#/t/${(await start()).id}`);
      } catch (e) {
        error.textContent = explain(e);
      }
    },
  }, h("h2", {}, "Start a conversation"),
  h("div", {}, h("label", { for: "department" }, "Department"), select),
  h("div", {}, h("label", { for: "thread-title" }, "Subject"), title),
  error, h("button", { class: "primary", type: "submit" }, "Open conversation"));

  /** @type {Thread | null} */
  let target = null; // the latest open conversation, once listed
  const photoTarget = h("p", { class: "muted", id: "take-photo-target" });
  const photoError = h("p", { class: "error", role: "alert" });
  const takePhoto = h("button", {
    type: "button", class: "primary", id: "patient-take-photo", "aria-describedby": "take-photo-target",
    onclick: async () => {
      photoError.textContent = "";
      try {
        const thread = target ?? (target = await start());
        if (await openPhotoSheet(app, thread.id, { camera: true })) app.go(`#/t/${thread.id}`);
      } catch (e) {
        photoError.textContent = explain(e);
      }
    },
  }, "Take photo");
  const describeTarget = () => (photoTarget.textContent = target
    ? `Sent to “${target.title}” (${app.session.departments.get(target.department)?.name ?? ""}).`
    : `Starts “${title.value.trim() || "Wound review"}” in ${select.selectedOptions[0]?.textContent ?? "your department"}.`);
  select.addEventListener("change", describeTarget);
  title.addEventListener("input", describeTarget);
  describeTarget();
  const camera = h("div", { class: "card" }, takePhoto, photoTarget, photoError);
  const photos = h("a", { class: "button", id: "patient-photos", href: `#/library?patient=${patientId}` }, "Photos of this patient");
  const report = reportCard(/** @type {import("../app.js").SignedIn} */ (app), patientId);
  const view = {
    el: h("div", { class: "stack" }, header, camera, photos, report.el, h("h2", {}, "Conversations"), list, create),
    title: "Patient", back: true, unmount: report.unmount,
  };
  (async () => {
    try {
      const p = await app.session.patient(patientId);
      header.replaceChildren(h("h2", {}, patientLabel(p)),
        h("p", { class: "muted" }, `Born ${birthDate(p.birth_date)} · ${p.sex} · IPP ${p.ipp}`),
        h("p", { class: "muted" }, p.ward ? `Admitted: ${p.ward}` : "Not admitted now"));
      app.retitle(view.el, patientLabel(p));
      /** @type {Thread[]} */
      const threads = await get(`/api/patients/${patientId}/threads`);
      for (const t of threads) app.session.threads.set(t.id, t);
      target = threads.filter((t) => !t.closed_at).sort((a, b) => b.created_at.localeCompare(a.created_at))[0] ?? null;
      describeTarget();
      list.replaceChildren(...threads.map((t) => h("li", {}, h("a", { href: `#/t/${t.id}` },
        h("span", { class: "grow" }, h("strong", {}, t.title),
          h("div", { class: "sub" }, `${app.session.departments.get(t.department)?.name ?? ""} · ${t.last_seq} messages · ${shortTime(t.created_at)}`)),
        t.closed_at ? h("span", { class: "tag" }, "Closed") : null))));
      if (!threads.length) list.append(h("li", { class: "muted" }, "No conversation about this patient in your departments."));
    } catch (e) {
      header.replaceChildren(h("p", { class: "error" }, explain(e)));
    }
  })();
  return view;
}

/**
 * The Follow-up report button: the PDF is made here and saved by the browser; the
 * server records only that it was made. Its Blob URL lives as long as the screen.
 * @param {import("../app.js").SignedIn} app
 * @param {number} patientId
 */
function reportCard(app, patientId) {
  /** @type {string | null} */
  let url = null;
  const status = h("p", { class: "muted", id: "patient-report-status", role: "status", "aria-live": "polite" });
  const save = h("p", {});
  const button = h("button", {
    type: "button", id: "patient-report",
    onclick: async () => {
      button.disabled = true;
      status.className = "muted";
      status.textContent = "Listing the photos…";
      try {
        const made = await makeReport(app, patientId, {
          onProgress: (done, total) => (status.textContent = `Decrypting photo ${done} of ${total} on this device…`),
        });
        if (url) URL.revokeObjectURL(url);
        url = made.url;
        const link = h("a", { href: url, download: made.filename, id: "patient-report-file" }, `Save ${made.filename} again`);
        save.replaceChildren(link);
        status.textContent = `Report of ${made.photos} photo(s) made on this device (times in ${made.zone}).`;
        link.click();
      } catch (error) {
        status.className = "error";
        status.textContent = explain(error);
      } finally {
        button.disabled = false;
      }
    },
  }, "Follow-up report");
  return {
    el: h("div", { class: "card" }, button, status, save),
    unmount: () => url && URL.revokeObjectURL(url),
  };
}
