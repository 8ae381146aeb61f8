// First use without a deployment file: the user confirms the institution's
// admin key fingerprint against the one IT published (intranet, poster),
// and this browser remembers it and refuses a change afterwards.
import * as c from "../crypto.js";
import { confirmPin, serverInstitutionKeys } from "../pins.js";
import { h, explain } from "../ui.js";

export function render(app) {
  const el = h("div", { class: "stack" }, h("p", { class: "loading" }, "Loading the institution key…"));
  serverInstitutionKeys().then((keys) => {
    if (!keys.admin) {
      el.replaceChildren(h("p", { class: "notice" }, explain({ code: "no_admin_key" })));
      return;
    }
    const confirm = h("button", {
      class: "primary", type: "button",
      onclick: async () => {
        await confirmPin("admin", keys.admin.fingerprint);
        app.pins.admin = keys.admin.fingerprint;
        if (app.keyState === "ready") app.connect();
        else app.go("#/admin"); // an administrator without keys of their own
      },
    }, "It matches: trust this key");
    el.replaceChildren(h("div", { class: "card stack" },
      h("h2", {}, "Confirm your hospital's key"),
      h("p", {}, "This device has not been configured by IT with your hospital's institution key. Compare the fingerprint below with the one IT published. Continue only if every group matches."),
      h("p", { class: "fingerprint", id: "admin-fingerprint" }, c.groupFingerprint(keys.admin.fingerprint)),
      confirm,
      h("p", { class: "muted" }, "If it does not match, do not continue: call IT.")));
    confirm.focus();
  }).catch((error) => el.replaceChildren(h("p", { class: "error" }, explain(error))));
  return { el, title: "Institution key" };
}
