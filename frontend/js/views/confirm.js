// @ts-check
// A head's confirmation before an act that changes what others may do: closing a
// conversation, removing a member. The dialog says what happens and asks for a
// reason, which the server keeps in the audit trail only (plain text: compliance
// reads it, members never see it), so it should name no patient.
import { t } from "../i18n.js";
import { h } from "../ui.js";

/** At most as long as the server keeps (rooms.actions.MAX_REASON, a redaction's). */
export const MAX_REASON = 200;

/**
 * Ask; resolves to {reason} on confirmation (the reason trimmed, maybe empty), null
 * on "Cancel" or Escape. The dialog lives on <body> while open (sign-out removes it).
 * `title`, `lines` and `verb` come translated (t()) from the caller.
 * @param {{title: string, lines: (string | HTMLElement)[], verb: string, id: string}} what
 *   `id` names the dialog (`${id}-dialog`), its reason field (`${id}-reason`) and its
 *   confirming button (`confirm-${id}`)
 * @returns {Promise<{reason: string} | null>}
 */
export function confirmWithReason({ title, lines, verb, id }) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-label": title, id: `${id}-dialog` });
    const reason = h("textarea", { id: `${id}-reason`, name: "reason", rows: 2, maxlength: MAX_REASON });
    let answered = false;
    const finish = (/** @type {{reason: string} | null} */ value) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    dialog.append(h("form", {
      class: "stack", method: "dialog",
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        finish({ reason: reason.value.trim() });
      },
    },
    h("h2", {}, title),
    lines.map((line) => (typeof line === "string" ? h("p", {}, line) : line)),
    h("div", {}, h("label", { for: `${id}-reason` }, t("Reason (kept in the audit trail)")), reason),
    h("p", { class: "muted" }, t("Compliance staff can read the reason; members cannot. Name no patient in it.")),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => finish(null) }, t("Cancel")),
      h("button", { type: "submit", class: "danger", id: `confirm-${id}` }, verb))));
    dialog.addEventListener("cancel", () => finish(null), { once: true });
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}
