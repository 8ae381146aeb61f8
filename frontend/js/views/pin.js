// @ts-check
// Without IT's deployment file (/app/institution.json): the user confirms each
// institution key the file would have named, the admin key (root of every
// department's membership) and the compliance key (which reads every room key
// version) the same way, against the fingerprints IT published (intranet,
// poster). Nothing is trusted on first use: until a key is confirmed, nothing
// is verified or wrapped with it. A remembered key the server has since
// changed is never offered again here: it is refused (pins.js mismatches).
import * as c from "../crypto.js";
import { confirmPin, serverInstitutionKeys, unconfirmed } from "../pins.js";
import { N_, t } from "../i18n.js";
import { h, explain } from "../ui.js";

const WHAT = {
  admin: [N_("Confirm your hospital's admin key"),
    N_("It proves who belongs to each department: every admission your colleagues' heads sign is checked against it.")],
  compliance: [N_("Confirm your hospital's compliance key"),
    N_("Every conversation's key is also given to this key, so that compliance officers can review records as the law requires. A wrong key here would let someone else read everything.")],
};

/** Where to go once every key is confirmed. @param {import("../app.js").App} app */
function done(app) {
  if (app.keyState === "ready") app.connect();
  else app.go(app.keylessHome());
}

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const el = h("div", { class: "stack" }, h("p", { class: "loading" }, t("Loading the institution keys…")));
  const show = async () => {
    const server = await serverInstitutionKeys();
    const [kind] = unconfirmed(app.pinned, server);
    if (!kind) {
      if (!server.admin && !app.pinned.admin) {
        el.replaceChildren(h("p", { class: "notice", dataset: { code: "no_admin_key" } }, explain({ code: "no_admin_key" })));
        return;
      }
      done(app);
      return;
    }
    // unconfirmed() lists only the kinds the server has a key for.
    const fingerprint = /** @type {{fingerprint: string}} */ (server[kind]).fingerprint;
    const [title, why] = WHAT[kind];
    const confirm = h("button", {
      class: "primary", type: "button", id: `confirm-${kind}-key`,
      onclick: async () => {
        confirm.disabled = true;
        await confirmPin(app.pinned, kind, fingerprint);
        await show();
      },
    }, t("It matches: trust this key"));
    el.replaceChildren(h("div", { class: "card stack", dataset: { kind } },
      h("h2", {}, t(title)),
      h("p", {}, t("This device has not been configured by IT with your hospital's institution keys. Compare the fingerprint below with the one IT published. Continue only if every group matches.")),
      h("p", { class: "muted" }, t(why)),
      h("p", { class: "fingerprint", id: `${kind}-fingerprint` }, c.groupFingerprint(fingerprint)),
      confirm,
      h("p", { class: "muted" }, t("If it does not match, do not continue: call IT."))));
    confirm.focus();
  };
  show().catch((error) => el.replaceChildren(h("p", { class: "error", role: "alert", dataset: { code: error.code ?? "" } }, explain(error))));
  return { el, title: t("Institution keys") };
}
