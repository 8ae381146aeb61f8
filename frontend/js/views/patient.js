// @ts-check
// A patient: their conversations in my departments, starting one, and their
// photo follow-up report, made on this device (photos/report.js). "Take
// photo" opens the camera at once, for the patient's latest open
// conversation or, without one, for the conversation the form below would
// start (so the photo is never more than a tap away once the patient is found).
import { get, post } from "../api.js";
import { makeReport } from "../photos/report.js";
import { t, tn } from "../i18n.js";
import { h, explain, birthDate, patientLabel, shortTime } from "../ui.js";
import { openPhotoSheet } from "./photosheet.js";

/** @import { Thread } from "../types/api.js" */

/**
 * @param {import("../app.js").App} app
 * @param {number} patientId
 */
export function render(app, patientId) {
  const header = h("div", { class: "card" }, h("p", { class: "loading" }, t("Loading…")));
  const list = h("ul", { class: "list", "aria-label": t("Conversations about this patient") });
  const error = h("p", { class: "error", role: "alert" });
  const departments = [...app.session.departments.values()];
  const select = h("select", { id: "department", name: "department" }, departments.map((d) => h("option", { value: d.id }, d.name)));
  const title = h("input", { id: "thread-title", name: "title", maxlength: 200, required: true, value: t("Wound review") });
  const start = async () => {
    /** @type {Thread} */
    const thread = await post("/api/threads", { department: Number(select.value), patient: patientId, title: title.value.trim() || t("Wound review") });
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
  }, h("h2", {}, t("Start a conversation")),
  h("div", {}, h("label", { for: "department" }, t("Department")), select),
  h("div", {}, h("label", { for: "thread-title" }, t("Subject")), title),
  error, h("button", { class: "primary", type: "submit" }, t("Open conversation")));

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
  }, t("Take photo"));
  const describeTarget = () => (photoTarget.textContent = target
    ? t("Sent to “{title}” ({department}).", { title: target.title, department: app.session.departments.get(target.department)?.name ?? "" })
    : select.selectedOptions[0]
      ? t("Starts “{title}” in {department}.", { title: title.value.trim() || t("Wound review"), department: select.selectedOptions[0].textContent })
      : t("Starts “{title}” in your department.", { title: title.value.trim() || t("Wound review") }));
  select.addEventListener("change", describeTarget);
  title.addEventListener("input", describeTarget);
  describeTarget();
  const camera = h("div", { class: "card" }, takePhoto, photoTarget, photoError);
  const photos = h("a", { class: "button", id: "patient-photos", href: `#/library?patient=${patientId}` }, t("Photos of this patient"));
  const report = reportCard(/** @type {import("../app.js").SignedIn} */ (app), patientId);
  const view = {
    el: h("div", { class: "stack" }, header, camera, photos, report.el, h("h2", {}, t("Conversations")), list, create),
    title: t("Patient"), back: true, unmount: report.unmount,
  };
  (async () => {
    try {
      const p = await app.session.patient(patientId);
      header.replaceChildren(h("h2", {}, patientLabel(p)),
        h("p", { class: "muted" }, t("Born {date} · {sex} · IPP {ipp}", { date: birthDate(p.birth_date), sex: p.sex, ipp: p.ipp })),
        h("p", { class: "muted" }, p.ward ? t("Admitted: {ward}", { ward: p.ward }) : t("Not admitted now")));
      app.retitle(view.el, patientLabel(p));
      /** @type {Thread[]} */
      const threads = await get(`/api/patients/${patientId}/threads`);
      for (const thread of threads) app.session.threads.set(thread.id, thread);
      target = threads.filter((thread) => !thread.closed_at).sort((a, b) => b.created_at.localeCompare(a.created_at))[0] ?? null;
      describeTarget();
      list.replaceChildren(...threads.map((thread) => h("li", {}, h("a", { href: `#/t/${thread.id}` },
        h("span", { class: "grow" }, h("strong", {}, thread.title),
          h("div", { class: "sub" }, tn(thread.last_seq, "{department} · {count} message · {time}", "{department} · {count} messages · {time}",
            { department: app.session.departments.get(thread.department)?.name ?? "", time: shortTime(thread.created_at) }))),
        thread.closed_at ? h("span", { class: "tag" }, t("Closed")) : null))));
      if (!threads.length) list.append(h("li", { class: "muted" }, t("No conversation about this patient in your departments.")));
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
      status.textContent = t("Listing the photos…");
      try {
        const made = await makeReport(app, patientId, {
          onProgress: (done, total) => (status.textContent = t("Decrypting photo {done} of {total} on this device…", { done, total })),
        });
        if (url) URL.revokeObjectURL(url);
        url = made.url;
        const link = h("a", { href: url, download: made.filename, id: "patient-report-file" }, t("Save {filename} again", { filename: made.filename }));
        save.replaceChildren(link);
        status.textContent = tn(made.photos, "Report of {count} photo made on this device (times in {zone}).", "Report of {count} photos made on this device (times in {zone}).", { zone: made.zone });
        link.click();
      } catch (error) {
        status.className = "error";
        status.textContent = explain(error);
      } finally {
        button.disabled = false;
      }
    },
  }, t("Follow-up report"));
  return {
    el: h("div", { class: "card" }, button, status, save),
    unmount: () => url && URL.revokeObjectURL(url),
  };
}
