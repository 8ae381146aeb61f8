// The institution's admin and compliance key fingerprints this browser trusts.
//
// They must not come from the API: whoever controls the database could
// then root a department's membership in a key of their own. Hospital IT
// puts them in a deployment file, served beside the code as
// /app/institution.json (docs/browser.md); the browser remembers what it
// used and refuses a silent change. Without that file, the user confirms
// the fingerprint once, against the one IT published (trust on first use).
import { get } from "./api.js";
import { loadPin, savePin } from "./keystore.js";

const FINGERPRINT = /^[0-9a-f]{64}$/;

export function normaliseFingerprint(text) {
  const compact = String(text || "").replace(/\s+/g, "").toLowerCase();
  return FINGERPRINT.test(compact) ? compact : null;
}

async function deploymentFile() {
  try {
    const response = await fetch("/app/institution.json", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) return {};
    const data = await response.json();
    return { admin: normaliseFingerprint(data.admin), compliance: normaliseFingerprint(data.compliance) };
  } catch {
    return {};
  }
}

/** {admin, compliance, source}: each a fingerprint or null (not configured, not confirmed yet). */
export async function loadPins() {
  const file = await deploymentFile();
  const pins = { source: file.admin ? "deployment" : "remembered" };
  for (const kind of ["admin", "compliance"]) {
    const remembered = await loadPin(kind);
    if (file[kind]) {
      // The deployment file is IT's word, at the level of the code itself.
      if (remembered !== file[kind]) await savePin(kind, file[kind]);
      pins[kind] = file[kind];
    } else {
      pins[kind] = remembered;
    }
  }
  return pins;
}

/** The server's current institution keys, for the first-use confirmation screen. */
export async function serverInstitutionKeys() {
  return get("/api/keys/institution");
}

export async function confirmPin(kind, fingerprint) {
  await savePin(kind, fingerprint);
}
