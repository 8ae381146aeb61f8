// @ts-check
// Sign-in: the only place a password is typed; it goes to POST /api/auth/login.
// The language switch is here too, so a user picks their language before signing in.
import { locale, t, tn } from "../i18n.js";
import { h, explain, languageSwitch } from "../ui.js";

/** @import { Refusal } from "../types/api.js" */

/** @param {Refusal} error a refused sign-in: an api.js ApiError */
function refusal(error) {
  if (error.code === "invalid_credentials") return t("Wrong username or password.");
  if (error.code === "locked_out") {
    const seconds = error.data?.retry_after_seconds ?? error.retryAfter ?? 900;
    const minutes = Math.ceil(seconds / 60);
    const until = new Date(Date.now() + seconds * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
    return tn(minutes,
      "Too many failed sign-ins: this account is locked on this device for {count} minute (until {until}). Ask a colleague or the switchboard if it is urgent.",
      "Too many failed sign-ins: this account is locked on this device for {count} minutes (until {until}). Ask a colleague or the switchboard if it is urgent.",
      { until });
  }
  return explain(error);
}

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("p", { id: "login-error", class: "error", role: "alert" });
  const submit = h("button", { class: "primary", type: "submit" }, t("Sign in"));
  const form = h("form", {
    class: "card", "aria-describedby": "login-error",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      submit.disabled = true;
      message.textContent = "";
      try {
        await app.signIn(username.value.trim(), password.value);
      } catch (error) {
        message.textContent = refusal(/** @type {Refusal} */ (error));
        password.value = "";
        password.focus();
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("h2", {}, t("Sign in")),
  h("div", {}, h("label", { for: "username" }, t("Username")), username),
  h("div", {}, h("label", { for: "password" }, t("Password")), password),
  message, submit,
  h("p", { class: "muted" }, t("Messages and photos are encrypted on this device before they leave it.")));
  // Choosing a language draws the sign-in screen again in it (what was typed is not kept).
  return { el: h("div", { class: "stack" }, form, languageSwitch(() => app.showLogin())), title: "Rounds", focus: username };
}
