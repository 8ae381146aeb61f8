// @ts-check
// Sign-in: the only place a password is typed; it goes to POST /api/auth/login.
import { h, explain } from "../ui.js";

/** @import { Refusal } from "../types/api.js" */

/** @param {Refusal} error a refused sign-in: an api.js ApiError */
function refusal(error) {
  if (error.code === "invalid_credentials") return "Wrong username or password.";
  if (error.code === "locked_out") {
    const seconds = error.data?.retry_after_seconds ?? error.retryAfter ?? 900;
    const minutes = Math.ceil(seconds / 60);
    const until = new Date(Date.now() + seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return `Too many failed sign-ins: this account is locked on this device for ${minutes} minute${minutes === 1 ? "" : "s"} (until ${until}). Ask a colleague or the switchboard if it is urgent.`;
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
  const submit = h("button", { class: "primary", type: "submit" }, "Sign in");
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
  h("h2", {}, "Sign in"),
  h("div", {}, h("label", { for: "username" }, "Username"), username),
  h("div", {}, h("label", { for: "password" }, "Password"), password),
  message, submit,
  h("p", { class: "muted" }, "Messages and photos are encrypted on this device before they leave it."));
  return { el: h("div", { class: "stack" }, form), title: "Rounds", focus: username };
}
