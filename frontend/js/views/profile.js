// @ts-check
// My profile: who I am signed in as, my departments and roles, and my key's
// comparison code, which I read aloud to a head who admits me (or signs my new
// key): their card shows the code the server gives for me, and they sign only
// if the two match (docs/crypto.md R7). The whole fingerprint is below it. The
// language switch is here too, as on the sign-in screen: remembered on this browser.
import * as c from "../crypto.js";
import { t } from "../i18n.js";
import { h, languageSwitch } from "../ui.js";
import { notificationsCard } from "../notifications.js";
import { devicesCard } from "../devices.js";
import { factorsCard } from "../factors.js";

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const user = app.session.user;
  const mine = app.e2e?.fingerprint;
  const departments = h("ul", { class: "list", "aria-label": t("My departments and roles") });
  const draw = () => {
    const list = [...app.session.departments.values()];
    departments.replaceChildren(...list.map((d) => h("li", { class: "card" },
      h("strong", {}, d.name), h("div", { class: "sub" }, d.role === "head" ? t("Head of department") : t("Member")))));
    if (!list.length) departments.append(h("li", { class: "muted" }, t("In no department yet: a head admits you once you have compared your code with them.")));
  };
  const onChange = () => draw();
  app.session.addEventListener("change", onChange);
  draw();
  const key = mine
    ? h("section", { class: "card stack", "aria-label": t("My key") },
      h("h2", {}, t("My comparison code")),
      h("p", { class: "fingerprint comparison", id: "my-code" }, c.comparisonCode(mine)),
      h("p", { class: "muted" }, t("A head compares it with you before signing your admission: read it aloud to them, in person or on a call they placed. Their screen shows the code Rounds gives them for you; they sign only if it matches.")),
      h("details", {}, h("summary", {}, t("My whole key fingerprint")),
        h("p", { class: "fingerprint", id: "my-fingerprint" }, c.groupFingerprint(mine))))
    : h("p", { class: "notice" }, t("You have no keys on this browser yet: set them up first."));
  const el = h("div", { class: "stack" },
    h("section", { class: "card" }, h("h2", {}, user.display_name || user.username), h("p", { class: "muted" }, t("Signed in as {username}", { username: user.username })),
      // What an administrator asks a first head for when their screen cannot list departments.
      h("p", { class: "muted", id: "my-number" }, t("User number {number}", { number: user.id }))),
    key,
    h("h2", {}, t("My departments")),
    departments,
    notificationsCard(app),
    factorsCard(),
    devicesCard(),
    h("section", { class: "card stack", id: "my-language" },
      languageSwitch(() => app.route()),
      h("p", { class: "muted" }, t("Your choice is remembered on this browser."))));
  return { el, title: t("My profile"), back: true, unmount: () => app.session.removeEventListener("change", onChange) };
}
