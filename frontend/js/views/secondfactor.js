// @ts-check
// The sign-in's second step (docs/browser.md, "Signing in with a second factor"). After
// the password the server answers 401 with a step token (`pending`, five minutes):
// `second_factor_required` lists the ways this user can finish (passkey, app code,
// backup code); `second_factor_setup_required` means their role requires a factor and
// they have none yet, so they set one up here to finish signing in. Nothing is signed
// in before the step is finished. Backup codes an answer carries are shown once, and
// the session starts only after "I have kept them".
import { t } from "../i18n.js";
import { h } from "../ui.js";
import { post } from "../api.js";
import { backupCodesBlock, factorRefusal, totpSetupBlock } from "../factors.js";
import { createCredential, getCredential, webauthnAvailable } from "../webauthn.js";

/** @import { LoginBody, SecondFactorStep } from "../types/api.js" */
/** @typedef {import("../app.js").App} App */

/**
 * Open the second step if the password's refusal asks for one; false for any other refusal.
 * @param {App} app
 * @param {unknown} error the refused POST /api/auth/login (an api.js ApiError)
 */
export function openSecondStep(app, error) {
  const e = /** @type {{code?: string, data?: SecondFactorStep}} */ (error);
  if (!e?.data?.pending) return false;
  const step = e.data;
  if (e.code === "second_factor_required") app.mount({ render: () => secondStep(app, step) }, []);
  else if (e.code === "second_factor_setup_required") app.mount({ render: () => setupStep(app, step) }, []);
  else return false;
  return true;
}

/**
 * A passkey alone, without a password: a discoverable credential names its user.
 * @param {App} app
 */
export async function signInWithPasskey(app) {
  const ceremony = await post("/api/auth/login/passkey/options", {});
  const credential = await getCredential(ceremony.options);
  await finish(app, await post("/api/auth/login/passkey", { ceremony: ceremony.ceremony, credential }));
}

/**
 * Signed in: the backup codes first when the answer carries new ones, then the session.
 * @param {App} app
 * @param {LoginBody & {backup_codes?: string[]}} result
 */
async function finish(app, result) {
  const codes = result.backup_codes ?? [];
  if (!codes.length) {
    await app.startSession(result.user);
    return;
  }
  const block = backupCodesBlock(codes, () => app.startSession(result.user));
  app.mount({ render: () => ({ el: h("div", { class: "stack" }, block.el), title: t("Sign in"), focus: block.focus }) }, []);
}

/**
 * The step expired or was used: back to the password, saying why. True if so.
 * @param {App} app
 * @param {unknown} error
 */
function expired(app, error) {
  if (/** @type {{code?: string}} */ (error)?.code !== "sign_in_expired") return false;
  app.showLogin();
  const message = document.getElementById("login-error");
  if (message) message.textContent = factorRefusal(error);
  return true;
}

/**
 * Run one attempt, its refusal in `message` (or back to the password when expired).
 * @param {App} app
 * @param {HTMLElement} message
 * @param {HTMLButtonElement[]} buttons disabled meanwhile
 * @param {() => Promise<void>} work
 */
async function attempt(app, message, buttons, work) {
  message.textContent = "";
  for (const button of buttons) button.disabled = true;
  try {
    await work();
  } catch (error) {
    if (!expired(app, error)) message.textContent = factorRefusal(error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

/** @param {App} app */
function backButton(app) {
  return h("button", { type: "button", class: "link", onclick: () => app.showLogin() }, t("Back to the password"));
}

/**
 * The code, passkey or backup code that finishes a sign-in.
 * @param {App} app
 * @param {SecondFactorStep} step
 */
function secondStep(app, step) {
  const { pending, methods } = step;
  const hasApp = methods.includes("totp");
  let backup = !hasApp;
  const code = h("input", { id: "second-factor-code", name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true, maxlength: "20", autocapitalize: "none", spellcheck: "false" });
  const label = h("label", { for: "second-factor-code" });
  const message = h("p", { id: "second-factor-error", class: "error", role: "alert" });
  const submit = h("button", { class: "primary", type: "submit" }, t("Continue"));
  const passkey = h("button", { type: "button", id: "use-passkey", onclick: () => attempt(app, message, [passkey, submit], async () => {
    const ceremony = await post("/api/auth/login/passkey/options", { pending });
    const credential = await getCredential(ceremony.options);
    await finish(app, await post("/api/auth/login/passkey", { ceremony: ceremony.ceremony, credential }));
  }) }, t("Use my passkey"));
  const toBackup = h("button", { type: "button", class: "link", id: "use-backup-code", onclick: () => switchTo(true) }, t("Use a backup code"));
  const toApp = h("button", { type: "button", class: "link", id: "use-app-code", onclick: () => switchTo(false) }, t("Use my app's code"));
  const form = h("form", {
    class: "stack", "aria-describedby": "second-factor-error",
    onsubmit: (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      const path = backup ? "/api/auth/login/backup-code" : "/api/auth/login/totp";
      attempt(app, message, [passkey, submit], async () => {
        try {
          await finish(app, await post(path, { pending, code: code.value.replace(/\s/g, "") }));
        } catch (error) {
          code.value = "";
          code.focus();
          throw error;
        }
      });
    },
  }, h("div", {}, label, code), submit);
  /** @param {boolean} toBackupCode */
  const switchTo = (toBackupCode) => {
    backup = toBackupCode;
    form.hidden = false;
    label.textContent = backup ? t("A backup code") : t("The code your authenticator app shows");
    code.setAttribute("inputmode", backup ? "text" : "numeric");
    code.setAttribute("autocomplete", backup ? "off" : "one-time-code");
    code.value = "";
    message.textContent = "";
    toBackup.hidden = backup || !methods.includes("backup_code");
    toApp.hidden = !backup || !hasApp;
    code.focus();
  };
  switchTo(backup);
  if (!hasApp) {
    // With a passkey and no app, the passkey is the way offered first; the code field waits for "Use a backup code".
    form.hidden = true;
    toBackup.hidden = !methods.includes("backup_code");
  }
  passkey.hidden = !methods.includes("passkey");
  const el = h("div", { class: "stack" }, h("section", { class: "card stack", id: "second-factor" },
    h("h2", {}, t("Confirm it is you")),
    h("p", { class: "muted" }, t("Your password is right. Finish signing in with your second factor.")),
    form, message, passkey, toBackup, toApp, backButton(app)));
  return { el, title: t("Sign in"), focus: hasApp ? code : passkey.hidden ? code : passkey };
}

/**
 * The role requires a second factor and this user has none: set one up to finish.
 * @param {App} app
 * @param {SecondFactorStep} step
 */
function setupStep(app, step) {
  const { pending, methods } = step;
  const slot = h("div", { class: "stack" });
  const message = h("p", { id: "setup-error", class: "error", role: "alert" });
  const appButton = h("button", { type: "button", class: "primary", id: "set-up-app", onclick: () => attempt(app, message, [appButton, passkeyButton], async () => {
    /** @type {import("../factors.js").TotpSetup} */
    const setup = await post("/api/auth/login/enrol/totp", { pending });
    const block = totpSetupBlock(setup, async (code) => {
      try {
        await finish(app, await post("/api/auth/login/enrol/totp/confirm", { pending, code }));
      } catch (error) {
        if (!expired(app, error)) throw error;
      }
    });
    slot.replaceChildren(block.el);
    block.focus.focus();
  }) }, t("Set up an authenticator app"));
  const passkeyButton = h("button", { type: "button", id: "make-passkey", onclick: () => attempt(app, message, [appButton, passkeyButton], async () => {
    const ceremony = await post("/api/auth/login/enrol/passkey/options", { pending });
    const credential = await createCredential(ceremony.options);
    await finish(app, await post("/api/auth/login/enrol/passkey", { pending, credential, name: "" }));
  }) }, t("Make a passkey"));
  appButton.hidden = !methods.includes("totp");
  passkeyButton.hidden = !methods.includes("passkey") || !webauthnAvailable();
  const el = h("div", { class: "stack" }, h("section", { class: "card stack", id: "second-factor-setup" },
    h("h2", {}, t("Set up a second factor")),
    h("p", {}, t("Your role requires a second factor at every sign-in: a code from an authenticator app on your phone, or a passkey (fingerprint, face or device PIN). Set one up now to finish signing in.")),
    appButton, passkeyButton, message, slot, backButton(app)));
  return { el, title: t("Sign in"), focus: appButton.hidden ? passkeyButton : appButton };
}
