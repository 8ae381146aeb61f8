// @ts-check
// Sign-in: the only place a password is typed; it goes to POST /api/auth/login.
// The language switch is here too, so a user picks their language before signing in.
// A second factor, when the server asks for one, is the next screen (views/secondfactor.js);
// a passkey alone signs in without the password.
import { t } from "../i18n.js";
import { h, explain, languageSwitch } from "../ui.js";
import { factorRefusal, lockedOut } from "../factors.js";
import { webauthnAvailable } from "../webauthn.js";
import { openSecondStep, signInWithPasskey } from "./secondfactor.js";

/** @import { Refusal } from "../types/api.js" */

/** @param {Refusal} error a refused sign-in: an api.js ApiError */
function refusal(error) {
  if (error.code === "invalid_credentials") return t("Wrong username or password.");
  if (error.code === "locked_out") return lockedOut(error);
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
  // "Sign in" is not in its name: the tests, and people, look for the one "Sign in" button.
  const passkey = h("button", { type: "button", id: "passkey-sign-in", hidden: !webauthnAvailable(), onclick: async () => {
    message.textContent = "";
    passkey.disabled = true;
    try {
      await signInWithPasskey(app);
    } catch (error) {
      message.textContent = factorRefusal(error);
    } finally {
      passkey.disabled = false;
    }
  } }, t("Use a passkey instead of a password"));
  const form = h("form", {
    class: "card", "aria-describedby": "login-error",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      submit.disabled = true;
      message.textContent = "";
      try {
        await app.signIn(username.value.trim(), password.value);
      } catch (error) {
        if (openSecondStep(app, error)) return;
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
  passkey,
  h("p", { class: "muted" }, t("Messages and photos are encrypted on this device before they leave it.")));
  // Choosing a language draws the sign-in screen again in it (what was typed is not kept).
  return { el: h("div", { class: "stack" }, form, languageSwitch(() => app.showLogin())), title: "Rounds", focus: username };
}
