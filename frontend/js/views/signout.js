// @ts-check
// Sign-out on a computer others use too (docs/browser.md, "Signing in again on a
// shared computer"). With keys on this browser, the header's Sign out asks first:
// - "Keep my keys here": the keys stay, locked under a PIN (devicecopy.js), so the
//   next sign-in here asks for the PIN, not the recovery code. The first time, the
//   PIN is chosen here, while the clinician is still at the screen: choosing it after
//   the screen is cleared would let the next person at the computer choose it.
//   Where the computer has a platform authenticator, a passkey (passkey.js) may lock
//   them instead, made here for the same reason; one without PRF falls back to the PIN;
// - "Not my computer": nothing of the user stays (keys, PIN copy, trust records).
// Either way the screen is cleared at once; the PIN copy is then sealed (Argon2id
// takes a second or two) from the identity held by this function only.
// Without keys on this browser (an administrator, a compliance officer, keys not set
// up) there is nothing to keep: Sign out signs out, as before.
// offerPasskey() is the passkey's side of the next sign-in, in the unlock form of views/keys.js.
import { checkPin, keep, keepWithPasskey, keptLock, PIN_DIGITS } from "../devicecopy.js";
import { codeOf } from "../e2e/errors.js";
import { t } from "../i18n.js";
import { passkeyPossible, register } from "../passkey.js";
import { h, showError, toast } from "../ui.js";

/**
 * @param {string} id
 * @param {string} label
 */
export function pinField(id, label) {
  const input = h("input", {
    id, name: id, type: "password", inputmode: "numeric", pattern: `[0-9]{${PIN_DIGITS}}`,
    maxlength: PIN_DIGITS, autocomplete: "off", required: true,
  });
  return { input, el: h("div", {}, h("label", { for: id }, label), input) };
}

/** @param {import("../app.js").App} app */
export async function askSignOut(app) {
  const e2e = app.e2e;
  if (app.keyState !== "ready" || !e2e?.fingerprint) {
    await app.signOut();
    return;
  }
  const kept = await e2e.identity.kept();
  const lock = kept ? await keptLock(e2e.me) : null;
  const passkey = !kept && (await passkeyPossible());
  const dialog = h("dialog", { "aria-labelledby": "signout-title", id: "signout-dialog" });
  const error = h("p", { class: "error", role: "alert", id: "signout-error" });
  const first = pinField("pin-new", t("Choose a PIN ({digits} digits)", { digits: PIN_DIGITS }));
  const again = pinField("pin-again", t("The same PIN again"));
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  const keepHere = h("button", { type: "submit", class: "primary", id: "keep-keys" }, t("Keep my keys here"));
  /**
   * Sign out now; `sealing` (the copy) finishes after the screen is cleared.
   * @param {Promise<void>} sealing @param {"pin" | "passkey"} [how] what locks it
   */
  const leave = async (sealing, how = "pin") => {
    close();
    await app.signOut({ kept: how });
    try {
      await sealing;
    } catch {
      toast(t("Your keys could not be kept on this computer: next time, sign in with your recovery code."));
    }
  };
  const withPasskey = h("button", { type: "button", id: "keep-with-passkey", hidden: !passkey, onclick: async () => {
    withPasskey.disabled = true;
    showError(error, null);
    let made;
    try {
      // While she is at the screen: the authenticator verifies her, as the PIN is chosen here.
      made = await register({ id: e2e.me, username: e2e.user.username, display_name: e2e.user.display_name });
    } catch (e) {
      if (codeOf(e) === "passkey_no_prf") {
        showError(error, e);
        withPasskey.hidden = true;
      } else {
        showError(error, Object.assign(new Error(t("No passkey was made: choose a PIN, or try the passkey again.")), { code: codeOf(e) }));
        withPasskey.disabled = false;
      }
      first.input.focus();
      return;
    }
    const identity = e2e.identity.keypair();
    await leave(keepWithPasskey(e2e.me, identity.fingerprint, identity.toBytes(), made), "passkey");
  } }, t("Use a passkey (fingerprint, face or device PIN)"));
  const form = h("form", {
    class: "stack", method: "dialog",
    oninput: () => showError(error, null),
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      if (kept) {
        close();
        await app.signOut({ kept: lock || "pin" });
        return;
      }
      const pin = first.input.value;
      try {
        checkPin(pin);
        if (pin !== again.input.value) throw Object.assign(new Error(t("The two PINs differ.")), { code: "pin_mismatch" });
      } catch (e) {
        showError(error, e);
        first.input.select();
        return;
      }
      // Held here only, then wiped by keep(): the page's keys go with the session.
      const identity = e2e.identity.keypair();
      const sealing = keep(e2e.me, identity.fingerprint, identity.toBytes(), pin);
      first.input.value = again.input.value = "";
      await leave(sealing);
    },
  },
  h("h2", { id: "signout-title" }, t("Sign out")),
  lock === "passkey"
    ? h("p", {}, t("Your keys stay on this computer, locked with your passkey: when you sign in here again, your passkey opens them."))
    : kept
      ? h("p", {}, t("Your keys stay on this computer, locked with your PIN: when you sign in here again, your PIN opens them."))
      : h("p", {}, t("Keep your keys on this computer? Choose a PIN: when you sign in here again, it opens them instead of your recovery code. Five wrong PINs erase them.")),
  kept ? [] : [first.el, again.el],
  kept ? [] : withPasskey,
  error,
  h("div", { class: "row" },
    keepHere,
    h("button", { type: "button", id: "not-my-computer", onclick: async () => {
      close();
      await app.signOut({ forget: true });
    } }, t("Not my computer")),
    h("button", { type: "button", onclick: close }, t("Cancel"))),
  h("p", { class: "muted" }, t("“Not my computer” removes everything of yours from this browser: you will need your recovery code here next time.")));
  dialog.append(form);
  dialog.addEventListener("cancel", close, { once: true });
  document.body.append(dialog);
  dialog.showModal();
  (kept ? keepHere : first.input).focus();
}

/**
 * The passkey's way in the unlock form (views/keys.js): when a passkey locks the kept
 * copy, `pinForm` gives way to "Unlock with my passkey". A cancelled or failed ceremony
 * counts no try and leaves the copy as it is; the recovery code is put forward.
 * @param {import("../app.js").App} app
 * @param {HTMLFormElement} pinForm
 * @param {(why: "absent" | "pin_wiped") => void} toRecovery
 */
export async function offerPasskey(app, pinForm, toRecovery) {
  if ((await keptLock(app.endToEnd.me).catch(() => null)) !== "passkey" || !pinForm.isConnected) return;
  const error = h("p", { class: "error", role: "alert" });
  const status = h("p", { role: "status", class: "muted" });
  const unlock = h("button", { class: "primary", type: "submit", id: "unlock-with-passkey" }, t("Unlock with my passkey"));
  const recovery = h("button", { type: "button", class: "link", id: "use-recovery", onclick: () => toRecovery("absent") }, t("Use my recovery code instead"));
  const form = h("form", {
    class: "card", id: "unlock-passkey",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      unlock.disabled = true;
      showError(error, null);
      status.textContent = "";
      try {
        await app.endToEnd.unlock("", {}); // a passkey's copy asks the authenticator, not a PIN (devicecopy.js)
        app.connect();
      } catch (e) {
        const code = codeOf(e);
        // Erased (five answers that did not open it, or not this computer's): the copy is gone.
        if (code === "pin_wiped" || code === "no_copy") return toRecovery("absent");
        showError(error, e);
        if (code === "passkey_failed") status.textContent = t("Your keys stay locked on this computer: try again, or use your recovery code.");
        unlock.disabled = false;
        recovery.focus();
      }
    },
  },
  h("h2", {}, t("Unlock your keys")),
  h("p", {}, t("This computer keeps your keys, locked with the passkey you made when you signed out here: your fingerprint, face or device PIN opens them.")),
  error, status, unlock, recovery);
  pinForm.replaceWith(form);
  unlock.focus();
}
