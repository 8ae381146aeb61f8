// A department's signed membership, as client/membership.py checks it: the
// chain of statements replayed from the pinned admin key. Keys are wrapped
// only for members it admits, and accepted only from wrappers it admitted.
import * as c from "./crypto.js";

export class MembershipRefused extends Error {
  constructor(code, message, data = {}) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

function checked(pub, fingerprint, whose) {
  try {
    return c.checkedPublic(pub, fingerprint, whose);
  } catch (error) {
    throw new MembershipRefused("membership_unverified", `${whose}: ${error.message}`);
  }
}

export function adminKeyOf(listing, pinnedFingerprint) {
  const admin = listing.admin;
  if (!admin) {
    throw new MembershipRefused("no_admin_key",
      "The institution's admin key is not set, so no head is appointed; no room key can be wrapped for anyone yet.");
  }
  const key = checked(admin.public, admin.fingerprint, "admin key");
  if (pinnedFingerprint && key.fingerprint !== pinnedFingerprint) {
    throw new MembershipRefused("admin_key_mismatch",
      "The server's institution admin key is not the one configured for this hospital; the department's membership cannot be trusted.",
      { pinned: pinnedFingerprint, server: key.fingerprint });
  }
  if (!pinnedFingerprint) {
    throw new MembershipRefused("admin_key_unconfirmed", "Confirm the institution's admin key first.", { server: key.fingerprint });
  }
  return key;
}

/** Replay the server's listing (GET /api/departments/{id}/statements). {members, everAdmitted}. */
export function verifyListing(listing, pinnedAdminFingerprint) {
  const adminKey = adminKeyOf(listing, pinnedAdminFingerprint);
  const keys = Object.entries(listing.keys || {}).map(([fp, pub]) => checked(pub, fp, `key ${fp.slice(0, 16)}`));
  let chain;
  try {
    chain = listing.statements.map((item) => c.parseSignedStatement(item.signed));
  } catch (error) {
    if (error instanceof c.CryptoError) {
      throw new MembershipRefused("membership_unverified", `The department's signed membership does not verify: ${error.message}`);
    }
    throw new MembershipRefused("membership_unverified", "The server's list of statements does not parse.");
  }
  try {
    return c.replayMembershipChain(chain, { adminKey, keys });
  } catch (error) {
    if (!(error instanceof c.CryptoError)) throw error;
    throw new MembershipRefused("membership_unverified",
      `The department's signed membership does not verify: ${error.message}`,
      { statement_index: error.data?.statement_index ?? null, reason: error.code });
  }
}

export function checkAttested(chain, user, fingerprint) {
  const member = chain.members.get(user);
  if (!member) {
    throw new MembershipRefused("unverified_member",
      `User ${user}'s admission is not signed by a head of this department; no key is wrapped for them.`, { user });
  }
  if (member.fingerprint !== fingerprint) {
    throw new MembershipRefused("unverified_member",
      `User ${user} was admitted with another key than the one the server shows now; a head must admit the new key first.`,
      { user, admitted: member.fingerprint, shown: fingerprint });
  }
}
