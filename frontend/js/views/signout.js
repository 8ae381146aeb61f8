// @ts-check
// Sign-out on a computer others use too (docs/browser.md, "Signing in again on a
// shared computer"). With keys on this browser, the header's Sign out asks first:
// - "Keep my keys here": the keys stay, locked under a PIN (devicecopy.js), so the
//   next sign-in here asks for the PIN, not the recovery code. The first time, the
//   PIN is chosen here, while the clinician is still at the screen: choosing it after
//   the screen is cleared would let the next person at the computer choose it;
// - "Not my computer": nothing of the user stays (keys, PIN copy, trust records).
// Either way the screen is cleared at once; the PIN copy is then sealed (Argon2id
// takes a second or two) from the identity held by this function only.
// Without keys on this browser (an administrator, a compliance officer, keys not set
// up) there is nothing to keep: Sign out signs out, as before.
import { checkPin, keep, PIN_DIGITS } from "../devicecopy.js";
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
  const dialog = h("dialog", { "aria-labelledby": "signout-title", id: "signout-dialog" });
  const error = h("p", { class: "error", role: "alert", id: "signout-error" });
  const first = pinField("pin-new", `Choose a PIN (${PIN_DIGITS} digits)`);
  const again = pinField("pin-again", "The same PIN again");
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  const keepHere = h("button", { type: "submit", class: "primary", id: "keep-keys" }, "Keep my keys here");
  const form = h("form", {
    class: "stack", method: "dialog",
    oninput: () => showError(error, null),
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      if (kept) {
        close();
        await app.signOut({ kept: true });
        return;
      }
      const pin = first.input.value;
      try {
        checkPin(pin);
        if (pin !== again.input.value) throw Object.assign(new Error("The two PINs differ."), { code: "pin_mismatch" });
      } catch (e) {
        showError(error, e);
        first.input.select();
        return;
      }
      // Held here only, then wiped by keep(): the page's keys go with the session.
      const identity = e2e.identity.keypair();
      const sealing = keep(e2e.me, identity.fingerprint, identity.toBytes(), pin);
      first.input.value = again.input.value = "";
      close();
      await app.signOut({ kept: true });
      try {
        await sealing;
      } catch {
        toast("Your keys could not be kept on this computer: next time, sign in with your recovery code.");
      }
    },
  },
  h("h2", { id: "signout-title" }, "Sign out"),
  kept
    ? h("p", {}, "Your keys stay on this computer, locked with your PIN: when you sign in here again, your PIN opens them.")
    : h("p", {}, "Keep your keys on this computer? Choose a PIN: when you sign in here again, it opens them instead of your recovery code. Five wrong PINs erase them."),
  kept ? [] : [first.el, again.el],
  error,
  h("div", { class: "row" },
    keepHere,
    h("button", { type: "button", id: "not-my-computer", onclick: async () => {
      close();
      await app.signOut({ forget: true });
    } }, "Not my computer"),
    h("button", { type: "button", onclick: close }, "Cancel")),
  h("p", { class: "muted" }, "“Not my computer” removes everything of yours from this browser: you will need your recovery code here next time."));
  dialog.append(form);
  dialog.addEventListener("cancel", close, { once: true });
  document.body.append(dialog);
  dialog.showModal();
  (kept ? keepHere : first.input).focus();
}
