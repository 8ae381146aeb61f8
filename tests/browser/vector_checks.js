// The checks of docs/crypto.md §10, run in the browser on the shared vectors.
// `c` is /app/js/crypto.js; returns a list of failures (empty when all pass).
async function checkVectors(c, vectors) {
  const failures = [];
  const fail = (what, detail) => failures.push(`${what}: ${detail}`);
  const b64 = (t) => c.b64decode(t);
  const same = (a, b) => c.equalBytes(a, b);
  const expectError = (what, code, fn) => {
    try {
      fn();
      fail(what, `accepted, expected ${code}`);
    } catch (error) {
      if (error.code !== code) fail(what, `got ${error.code || error} (${error.message}), expected ${code}`);
    }
  };
  const identities = (file) => {
    const out = {};
    for (const [name, item] of Object.entries(file.identities || {})) {
      const pair = c.identityFromBytes(b64(item.secret));
      if (pair.fingerprint !== item.fingerprint) fail(`identity ${name}`, "fingerprint differs");
      const pub = c.publicFromDict(item.public);
      if (pub.fingerprint !== item.fingerprint || !same(pub.ed25519, pair.public.ed25519)) fail(`identity ${name}`, "public differs");
      out[name] = pair;
    }
    return out;
  };
  let checked = 0;

  // envelope.json: decrypt, and re-encrypt to exactly the same bytes.
  {
    const file = vectors.envelope;
    const ids = identities(file);
    const rk = c.roomKey(b64(file.room_key.key), file.room_key.department, file.room_key.version);
    for (const v of file.valid) {
      const sender = ids[v.sender_identity];
      const plain = c.decryptMessage(v.envelope, { roomKey: rk, senderKey: sender.public });
      if (!same(plain, b64(v.plaintext))) fail(`envelope ${v.name}`, "plaintext differs");
      const again = c.encryptMessage(b64(v.plaintext), {
        roomKey: rk, thread: v.thread, sender: v.sender, clientMsgId: v.client_msg_id, signer: sender, nonce: b64(v.nonce),
      });
      if (JSON.stringify(again) !== JSON.stringify(v.envelope)) fail(`envelope ${v.name}`, "re-encryption differs");
      if (c.fromUtf8(c.canonicalJson({ v: 1, room: rk.department, thread: v.thread, key_version: rk.version, sender: v.sender, client_msg_id: v.client_msg_id })) !== v.ad) fail(`envelope ${v.name}`, "AD differs");
      checked++;
    }
    for (const v of file.invalid) {
      expectError(`envelope ${v.name}`, v.error, () => c.decryptMessage(v.envelope, { roomKey: rk, senderKey: ids[v.sender_identity].public }));
      checked++;
    }
  }

  // wrap.json: signed bytes, then unwrap to the room key.
  {
    const file = vectors.wrap;
    const ids = identities(file);
    const key = b64(file.room_key.key);
    for (const v of file.valid) {
      const record = c.parseWrapRecord(v.record);
      if (!same(c.concat(c.CONTEXT_WRAP, c.wrapSignedBytes(record)), b64(v.signed_bytes))) fail(`wrap ${v.name}`, "signed bytes differ");
      const opened = c.unwrapRoomKey(record, ids[v.recipient_identity], ids[v.wrapper_identity].public);
      if (!same(opened.key, key) || opened.version !== file.room_key.version) fail(`wrap ${v.name}`, "room key differs");
      checked++;
    }
    for (const v of file.invalid) {
      expectError(`wrap ${v.name}`, v.error, () => c.unwrapRoomKey(c.parseWrapRecord(v.record), ids[v.recipient_identity], ids[v.wrapper_identity].public));
      checked++;
    }
    // And a wrap made here opens with the same code.
    const rk = c.roomKey(key, file.room_key.department, file.room_key.version);
    const [a, b] = Object.values(ids);
    const mine = c.unwrapRoomKey(c.parseWrapRecord(c.wrapRoomKey(rk, b.public, a)), b, a.public);
    if (!c.sameRoomKey(mine, rk)) fail("wrap round trip", "differs");
  }

  // statement.json: signatures, re-signing, the chain, and the broken chains.
  {
    const file = vectors.statement;
    const ids = identities(file);
    const admin = ids[file.admin_identity].public;
    const keys = Object.keys(file.users).map((name) => ids[name].public);
    const chain = [];
    for (const [i, item] of file.chain.entries()) {
      const signed = c.parseSignedStatement(item.signed);
      const signer = ids[item.signer_identity];
      c.verifyStatement(signed, signer.public);
      if (!same(c.concat(c.CONTEXT_STATEMENT, c.statementBytes(signed.statement)), b64(item.signed_bytes))) fail(`statement ${i}`, "signed bytes differ");
      const st = item.signed.statement;
      const again = c.makeStatement(signer, {
        kind: st.kind, department: st.department, subject: st.subject_user, subjectFingerprint: st.subject_fingerprint,
        role: st.role, signerUser: st.signer_user, issuedAt: st.issued_at,
      });
      if (JSON.stringify(again) !== JSON.stringify(item.signed)) fail(`statement ${i}`, "re-signing differs");
      chain.push(signed);
      checked++;
    }
    const replayed = c.replayMembershipChain(chain, { adminKey: admin, keys });
    const roles = Object.fromEntries([...replayed.members].map(([u, m]) => [String(u), m.role]));
    if (JSON.stringify(roles, Object.keys(roles).sort()) !== JSON.stringify(file.members_after_chain, Object.keys(file.members_after_chain).sort())) {
      fail("statement chain", `members ${JSON.stringify(roles)}`);
    }
    for (const v of file.invalid_chains) {
      try {
        c.replayMembershipChain(v.chain.map((s) => c.parseSignedStatement(s)), { adminKey: admin, keys });
        fail(`chain ${v.name}`, "accepted");
      } catch (error) {
        if (error.code !== v.error || error.data?.statement_index !== v.statement_index) {
          fail(`chain ${v.name}`, `got ${error.code} at ${error.data?.statement_index}: ${error.message}`);
        }
      }
      checked++;
    }
  }

  // stream.json: decrypt; re-encrypt to the same length and prefix, which decrypts too.
  {
    const file = vectors.stream;
    const key = b64(file.key);
    for (const v of file.valid) {
      const stream = b64(v.stream);
      const plain = c.decryptStream(key, stream, { expectedSha256: c.fromHex(v.sha256) });
      if (!same(plain, b64(v.plaintext))) fail(`stream ${v.name}`, "plaintext differs");
      const again = c.encryptStream(key, plain, file.chunk_size);
      if (again.size !== v.size || again.chunks !== v.chunks || !same(again.stream.subarray(0, 9), stream.subarray(0, 9))) fail(`stream ${v.name}`, "re-encryption shape differs");
      if (!same(c.decryptStream(key, again.stream, { expectedSha256: again.sha256 }), plain)) fail(`stream ${v.name}`, "re-encryption does not decrypt");
      checked++;
    }
    for (const v of file.invalid) {
      expectError(`stream ${v.name}`, v.error, () => c.decryptStream(key, b64(v.stream)));
      checked++;
    }
  }

  // backup.json: open with both spellings, seal again to exactly the blob.
  {
    const file = vectors.backup;
    const ids = identities(file);
    for (const v of file.valid) {
      const blob = b64(v.blob);
      for (const secret of [v.secret, v.also_opens_with]) {
        const opened = c.openBackup(blob, secret);
        if (opened.fingerprint !== ids[v.identity].fingerprint) fail(`backup ${v.name}`, "identity differs");
      }
      const again = c.sealBackup(ids[v.identity], v.secret, {
        userChosen: v.user_chosen, opslimit: v.opslimit, memlimit: v.memlimit, salt: b64(v.salt), nonce: b64(v.nonce),
      });
      if (!same(again, blob)) fail(`backup ${v.name}`, "re-sealing differs");
      checked++;
    }
    for (const v of file.invalid) {
      expectError(`backup ${v.name}`, v.error, () => c.openBackup(b64(v.blob), v.secret));
      checked++;
    }
    expectError("weak passphrase", "weak_passphrase", () => c.checkPassphraseStrength("aaaaaaaaaaaaaaaa"));
    expectError("digits only", "weak_passphrase", () => c.checkPassphraseStrength("1234567812345678"));
    c.checkPassphraseStrength("correct horse battery staple");
    const secret = c.generateRecoverySecret();
    if (!/^([0-9A-HJKMNP-TV-Z]{4}-){6}[0-9A-HJKMNP-TV-Z]{4}$/.test(secret)) fail("generated secret", secret);
  }
  return { failures, checked };
}
