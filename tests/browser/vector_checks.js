// The checks of docs/crypto.md §12, run in the browser on the shared vectors,
// file for file as tests/crypto/test_vectors.py does them with the Python API.
// `c` is /app/js/crypto.js. Returns {failures, checked}: the failures (empty
// when all pass) and, per file, how many cases were checked.
async function checkVectors(c, vectors) {
  const failures = [];
  const checked = {};
  const count = (file) => { checked[file] = (checked[file] || 0) + 1; };
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
  // Every failure is reported, and the checks go on: one broken case must not hide the others.
  const attempt = (what, fn) => {
    try {
      fn();
    } catch (error) {
      fail(what, `${error.code || error.name}: ${error.message}`);
    }
  };
  const identities = (file) => {
    const out = {};
    for (const [name, item] of Object.entries(file.identities || {})) {
      const pair = c.identityFromBytes(b64(item.secret));
      if (pair.fingerprint !== item.fingerprint) fail(`identity ${name}`, "fingerprint differs");
      const pub = c.publicFromDict(item.public);
      if (pub.fingerprint !== item.fingerprint || !same(pub.ed25519, pair.public.ed25519) || !same(pub.x25519, pair.public.x25519)) {
        fail(`identity ${name}`, "public differs");
      }
      out[name] = pair;
    }
    return out;
  };
  const roomKey = (entry) => {
    const key = c.roomKey(b64(entry.key), entry.department, entry.version);
    if (!same(key.commitment, b64(entry.commitment))) fail(`room key ${entry.department}/${entry.version}`, "commitment differs");
    return key;
  };
  const asPair = (member) => (member ? [member.role, member.fingerprint] : null);

  // identity.json: every persona reproduces; every degenerate public identity is refused.
  {
    const file = vectors.identity;
    for (const _ of Object.keys(identities(file))) count("identity");
    for (const v of file.invalid_public) {
      expectError(`identity ${v.name}`, v.error, () => c.publicFromDict(v.public));
      count("identity");
    }
  }

  // statement.json: signatures, signed bytes, hashes, re-signing, the replay, and the broken chains.
  const statementFile = vectors.statement;
  const people = identities(statementFile);
  const admin = people[statementFile.admin_identity].public;
  const keys = Object.entries(people).filter(([name]) => name !== statementFile.admin_identity).map(([, pair]) => pair.public);
  const signedChain = statementFile.chain.map((item) => c.parseSignedStatement(item.signed));
  let chain = null;
  {
    const file = statementFile;
    for (const [i, item] of file.chain.entries()) {
      attempt(`statement ${i}`, () => {
        const signed = signedChain[i];
        const signer = people[item.signer_identity];
        c.verifyStatement(signed, signer.public);
        if (!same(c.concat(c.CONTEXT_STATEMENT, c.statementBytes(signed.statement)), b64(item.signed_bytes))) fail(`statement ${i}`, "signed bytes differ");
        if (c.statementHash(signed) !== item.hash) fail(`statement ${i}`, "hash differs");
        const st = item.signed.statement;
        const again = c.makeStatement(signer, {
          kind: st.kind, department: st.department, seq: st.seq, prev: st.prev, subject: st.subject_user,
          subjectFingerprint: st.subject_fingerprint, replaces: st.replaces, role: st.role, signerUser: st.signer_user,
          issuedAt: st.issued_at,
        });
        if (JSON.stringify(again) !== JSON.stringify(item.signed)) fail(`statement ${i}`, "re-signing differs");
      });
      count("statement");
    }
    attempt("statement chain", () => {
      chain = c.replayMembershipChain(signedChain, { adminKey: admin, keys });
      if (chain.head.seq !== file.head.seq || chain.head.hash !== file.head.hash) fail("statement chain", `head ${JSON.stringify(chain.head)}`);
      if (chain.department !== file.chain[0].signed.statement.department) fail("statement chain", "department differs");
      file.chain.forEach((item, i) => {
        if (chain.hashAt(i + 1) !== item.hash) fail("statement chain", `hashAt(${i + 1}) differs`);
      });
      if (chain.hashAt(0) !== c.GENESIS || chain.hashAt(file.chain.length + 1) !== null) fail("statement chain", "hashAt at the ends");
      const members = Object.fromEntries([...chain.members].map(([u, m]) => [String(u), asPair(m)]));
      if (c.fromUtf8(c.canonicalJson(members)) !== c.fromUtf8(c.canonicalJson(file.members_after_chain))) {
        fail("statement chain", `members ${JSON.stringify(members)}`);
      }
      for (const [seq, expected] of Object.entries(file.members_at)) {
        for (const user of Object.values(file.users)) {
          const got = asPair(chain.memberAt(user, Number(seq)));
          if (JSON.stringify(got) !== JSON.stringify(expected[String(user)] ?? null)) {
            fail("statement chain", `memberAt(${user}, ${seq}) is ${JSON.stringify(got)}`);
          }
        }
      }
      for (const [seq, position] of Object.entries(file.last_exclusion_at)) {
        if (chain.lastExclusionAt(Number(seq)) !== position) fail("statement chain", `lastExclusionAt(${seq})`);
      }
      for (const fp of Object.values(file.fingerprints)) {
        if (fp !== admin.fingerprint && chain.everAdmitted.has(fp) !== chain.keys.has(fp)) fail("statement chain", `keys and everAdmitted differ on ${fp}`);
      }
      // checkExtends and checkCovers: a head of this chain passes, a later or different one is refused.
      const head = chain.head;
      chain.checkExtends(head);
      chain.checkExtends(c.EMPTY_HEAD);
      chain.checkCovers({ seq: 2, hash: file.chain[1].hash });
      const shorter = c.replayMembershipChain(signedChain.slice(0, 3), { adminKey: admin, keys });
      expectError("checkExtends beyond the chain", "membership_rollback", () => shorter.checkExtends(head));
      expectError("checkCovers beyond the chain", "membership_withheld", () => shorter.checkCovers(head));
      const other = { seq: 2, hash: file.chain[2].hash };
      expectError("checkExtends on a fork", "membership_fork", () => chain.checkExtends(other));
      expectError("checkCovers on a fork", "membership_fork", () => chain.checkCovers(other));
      expectError("a head of seq 0 with a hash", "invalid_envelope", () => chain.checkCovers({ seq: 0, hash: file.chain[0].hash }));
    });
    count("statement");
    for (const v of file.invalid_chains) {
      try {
        c.replayMembershipChain(v.chain.map((s) => c.parseSignedStatement(s)), { adminKey: admin, keys });
        fail(`chain ${v.name}`, "accepted");
      } catch (error) {
        if (error.code !== v.error || error.data?.statement_index !== v.statement_index) {
          fail(`chain ${v.name}`, `got ${error.code} at ${error.data?.statement_index}: ${error.message}`);
        }
      }
      count("statement");
    }
  }
  if (chain === null) return { failures, checked };

  // keyversion.json: against statement.json's chain.
  const keyVersionFile = vectors.keyversion;
  const versionKeys = {};
  const records = {};
  {
    const file = keyVersionFile;
    for (const [version, entry] of Object.entries(file.room_keys)) {
      versionKeys[version] = roomKey(entry);
      if (!same(c.keyCommitment(b64(entry.key), entry.department, entry.version), b64(entry.commitment))) fail(`room key ${version}`, "keyCommitment differs");
      count("keyversion");
    }
    const byFingerprint = Object.fromEntries(Object.values(people).map((pair) => [pair.fingerprint, pair]));
    for (const v of file.valid) {
      attempt(`key version ${v.name}`, () => {
        const signed = c.parseSignedKeyVersion(v.signed);
        if (!same(c.concat(c.CONTEXT_KEY_VERSION, c.keyVersionBytes(signed.record)), b64(v.signed_bytes))) fail(`key version ${v.name}`, "signed bytes differ");
        const record = c.verifyKeyVersion(signed, chain);
        records[record.version] = record;
        c.checkKeyMatches(record, versionKeys[record.version]);
        if (v.current) c.checkCurrent(record, chain);
        else expectError(`key version ${v.name} current`, v.stale_error, () => c.checkCurrent(record, chain));
        const again = c.makeKeyVersion(versionKeys[record.version], {
          head: { seq: record.chain_seq, hash: record.chain_head }, creatorUser: record.creator_user,
          creator: byFingerprint[record.creator_fingerprint],
        });
        if (JSON.stringify(again) !== JSON.stringify(v.signed)) fail(`key version ${v.name}`, "re-signing differs");
      });
      count("keyversion");
    }
    for (const v of file.invalid) {
      expectError(`key version ${v.name}`, v.error, () => c.verifyKeyVersion(c.parseSignedKeyVersion(v.signed), chain));
      count("keyversion");
    }
    const mismatch = file.commitment_mismatch;
    attempt("key version commitment mismatch", () => {
      const record = c.parseSignedKeyVersion(file.valid.find((v) => v.name === mismatch.record).signed).record;
      const other = versionKeys[mismatch.room_key_version];
      expectError("key version commitment mismatch", mismatch.error,
        () => c.checkKeyMatches(record, c.roomKey(other.key, record.department, record.version)));
    });
    count("keyversion");
  }

  // envelope.json: decrypt, and re-encrypt to exactly the same bytes; the refusals; then in the chain.
  {
    const file = vectors.envelope;
    const ids = identities(file);
    const rk = roomKey(file.room_key);
    for (const v of file.valid) {
      attempt(`envelope ${v.name}`, () => {
        const sender = ids[v.sender_identity];
        const plain = c.decryptMessage(v.envelope, { roomKey: rk, senderKey: sender.public });
        if (!same(plain, b64(v.plaintext))) fail(`envelope ${v.name}`, "plaintext differs");
        if (c.fromUtf8(c.parseEnvelope(v.envelope).ad) !== v.ad) fail(`envelope ${v.name}`, "AD differs");
        const again = c.encryptMessage(b64(v.plaintext), {
          roomKey: rk, head: v.chain_head, thread: v.thread, sender: v.sender, clientMsgId: v.client_msg_id,
          signer: sender, sentAt: v.sent_at, nonce: b64(v.nonce), corrects: v.corrects ?? null,
        });
        if (JSON.stringify(again) !== JSON.stringify(v.envelope)) fail(`envelope ${v.name}`, "re-encryption differs");
        if (c.parseEnvelope(v.envelope).corrects !== (v.corrects ?? null)) fail(`envelope ${v.name}`, "corrects differs");
      });
      count("envelope");
    }
    for (const v of file.invalid) {
      expectError(`envelope ${v.name}`, v.error, () => c.decryptMessage(v.envelope, { roomKey: rk, senderKey: ids[v.sender_identity].public }));
      count("envelope");
    }
    for (const v of file.in_chain.cases) {
      const args = { chain, record: records[v.key_version], roomKey: versionKeys[v.key_version] };
      if (v.error === null) {
        attempt(`envelope in chain ${v.name}`, () => {
          const { header, plaintext } = c.openEnvelope(v.envelope, args);
          if (!same(plaintext, b64(v.plaintext)) || header.key_version !== v.key_version) fail(`envelope in chain ${v.name}`, "differs");
        });
      } else {
        expectError(`envelope in chain ${v.name}`, v.error, () => c.openEnvelope(v.envelope, args));
      }
      count("envelope");
    }
  }

  // wrap.json: signed bytes, then unwrap to the room key.
  {
    const file = vectors.wrap;
    const ids = identities(file);
    const rk = roomKey(file.room_key);
    for (const v of file.valid) {
      attempt(`wrap ${v.name}`, () => {
        const record = c.parseWrapRecord(v.record);
        if (!same(c.concat(c.CONTEXT_WRAP, c.wrapSignedBytes(record)), b64(v.signed_bytes))) fail(`wrap ${v.name}`, "signed bytes differ");
        const opened = c.unwrapRoomKey(record, ids[v.recipient_identity], ids[v.wrapper_identity].public);
        if (!c.sameRoomKey(opened, rk) || !same(opened.commitment, rk.commitment)) fail(`wrap ${v.name}`, "room key differs");
      });
      count("wrap");
    }
    for (const v of file.invalid) {
      expectError(`wrap ${v.name}`, v.error, () => c.unwrapRoomKey(c.parseWrapRecord(v.record), ids[v.recipient_identity], ids[v.wrapper_identity].public));
      count("wrap");
    }
    // And a wrap made here opens with the same code.
    attempt("wrap round trip", () => {
      const [a, b] = Object.values(ids);
      const mine = c.unwrapRoomKey(c.parseWrapRecord(c.wrapRoomKey(rk, b.public, a)), b, a.public);
      if (!c.sameRoomKey(mine, rk)) fail("wrap round trip", "differs");
    });
  }

  // consult.json (docs/crypto.md §14): a guest in the chain, thread keys, their versions, wraps and envelopes.
  {
    const file = vectors.consult;
    const ids = identities(file);
    const consultAdmin = ids[file.admin_identity].public;
    const consultKeys = Object.entries(ids).filter(([name]) => name !== file.admin_identity).map(([, pair]) => pair.public);
    const byFingerprint = Object.fromEntries(Object.values(ids).map((pair) => [pair.fingerprint, pair]));
    const byUser = Object.fromEntries(Object.entries(file.users).map(([name, user]) => [user, ids[name]]));
    // Parse, then replay: a statement that does not parse is refused at its index too.
    const parseChain = (items) => items.map((item, index) => {
      try {
        return c.parseSignedStatement(item);
      } catch (error) {
        if (error instanceof c.CryptoError) error.data = { ...error.data, statement_index: index };
        throw error;
      }
    });
    const signed = parseChain(file.chain);
    for (const [i, item] of file.chain.entries()) {
      attempt(`consult statement ${i}`, () => {
        const st = item.statement;
        const again = c.makeStatement(byFingerprint[st.signer_fingerprint], {
          kind: st.kind, department: st.department, seq: st.seq, prev: st.prev, subject: st.subject_user,
          subjectFingerprint: st.subject_fingerprint, replaces: st.replaces, thread: st.thread ?? null, role: st.role,
          signerUser: st.signer_user, issuedAt: st.issued_at,
        });
        if (JSON.stringify(again) !== JSON.stringify(item)) fail(`consult statement ${i}`, "re-signing differs");
        if (i > 0 && c.statementHash(signed[i - 1]) !== st.prev) fail(`consult statement ${i}`, "prev is not the hash before it");
      });
      count("consult");
    }
    let consultChain = null;
    attempt("consult chain", () => {
      consultChain = c.replayMembershipChain(signed, { adminKey: consultAdmin, keys: consultKeys });
      if (consultChain.head.seq !== file.head.seq || consultChain.head.hash !== file.head.hash) fail("consult chain", `head ${JSON.stringify(consultChain.head)}`);
      const users = Object.values(file.users);
      for (const seq of Object.keys(file.members_at).map(Number)) {
        for (const user of users) {
          const member = asPair(consultChain.memberAt(user, seq));
          if (JSON.stringify(member) !== JSON.stringify(file.members_at[seq][String(user)] ?? null)) {
            fail("consult chain", `memberAt(${user}, ${seq}) is ${JSON.stringify(member)}`);
          }
          const guest = consultChain.guestAt(file.thread, user, seq);
          if ((guest?.fingerprint ?? null) !== (file.guests_at[seq][String(user)] ?? null)) {
            fail("consult chain", `guestAt(${file.thread}, ${user}, ${seq}) is ${JSON.stringify(guest)}`);
          }
        }
        const { room, thread } = file.last_exclusion_at[seq];
        if (consultChain.lastExclusionAt(seq) !== room || consultChain.lastExclusionAt(seq, file.thread) !== thread) {
          fail("consult chain", `lastExclusionAt(${seq})`);
        }
      }
      const atHead = Object.fromEntries([...consultChain.guestsOf(file.thread)].map(([u, g]) => [u, g.fingerprint]));
      if (JSON.stringify(atHead) !== JSON.stringify(file.guests_at[file.head.seq])) fail("consult chain", `guestsOf ${JSON.stringify(atHead)}`);
      const eve = file.chain.find((item) => item.statement.kind === "guest").statement.subject_fingerprint;
      if (!consultChain.everAdmitted.has(eve) || !consultChain.keys.has(eve)) fail("consult chain", "the guest's key is not the chain's");
      // A guest's key must be given to the replay while they are a guest at the head.
      const withoutEve = consultKeys.filter((key) => key.fingerprint !== eve);
      expectError("consult chain without the guest's key", "invalid_key",
        () => c.replayMembershipChain(signed.slice(0, 3), { adminKey: consultAdmin, keys: withoutEve }));
    });
    count("consult");
    const threadKeys = {};
    for (const [name, entry] of Object.entries(file.keys)) {
      attempt(`consult key ${name}`, () => {
        const key = c.roomKey(b64(entry.key), entry.department, entry.version, entry.thread);
        if (!same(key.commitment, b64(entry.commitment))) fail(`consult key ${name}`, "commitment differs");
        if (!same(c.keyCommitment(key.key, entry.department, entry.version, entry.thread), key.commitment)) fail(`consult key ${name}`, "keyCommitment differs");
        threadKeys[name] = key;
        if (entry.thread !== null && same(c.roomKey(key.key, entry.department, entry.version).commitment, key.commitment)) {
          fail(`consult key ${name}`, "commits as a room key of the same bytes does");
        }
      });
      count("consult");
    }
    const consultRecords = {};
    for (const [name, wire] of Object.entries(file.key_versions)) {
      attempt(`consult key version ${name}`, () => {
        const record = c.verifyKeyVersion(c.parseSignedKeyVersion(wire), consultChain);
        consultRecords[name] = record;
        c.checkKeyMatches(record, threadKeys[name]);
        const stale = file.current_at_head[name];
        if (stale === null) c.checkCurrent(record, consultChain);
        else expectError(`consult key version ${name} current`, stale, () => c.checkCurrent(record, consultChain));
        const again = c.makeKeyVersion(threadKeys[name], {
          head: { seq: record.chain_seq, hash: record.chain_head }, creatorUser: record.creator_user,
          creator: byFingerprint[record.creator_fingerprint],
        });
        if (JSON.stringify(again) !== JSON.stringify(wire)) fail(`consult key version ${name}`, "re-signing differs");
      });
      count("consult");
    }
    expectError("consult key version by the guest", file.version_by_the_guest.error,
      () => c.verifyKeyVersion(c.parseSignedKeyVersion(file.version_by_the_guest.signed), consultChain));
    count("consult");
    for (const v of file.wraps) {
      attempt(`consult wrap to ${v.recipient}`, () => {
        const record = c.parseWrapRecord(v.record);
        const expected = threadKeys[`${v.thread}/${v.version}`];
        const opened = c.unwrapRoomKey(record, ids[v.recipient], ids[v.wrapper].public);
        if (!c.sameRoomKey(opened, expected) || !same(opened.commitment, expected.commitment) || opened.thread !== v.thread) {
          fail(`consult wrap to ${v.recipient}`, "thread key differs");
        }
      });
      count("consult");
    }
    for (const v of file.envelopes) {
      const name = `${v.key.thread ?? "room"}/${v.key.version}`;
      const args = { chain: consultChain, record: consultRecords[name], roomKey: threadKeys[name] };
      if (v.error === null) {
        attempt(`consult envelope ${v.name}`, () => {
          const { header, plaintext } = c.openEnvelope(v.envelope, args);
          if (!same(plaintext, b64(v.plaintext)) || header.key_thread !== v.key.thread) fail(`consult envelope ${v.name}`, "differs");
          const h = v.envelope.header;
          const again = c.encryptMessage(plaintext, {
            roomKey: threadKeys[name], head: { seq: h.chain_seq, hash: h.chain_head }, thread: h.thread, sender: h.sender,
            clientMsgId: h.client_msg_id, signer: byUser[h.sender], sentAt: h.sent_at, nonce: b64(h.nonce),
          });
          if (JSON.stringify(again) !== JSON.stringify(v.envelope)) fail(`consult envelope ${v.name}`, "re-encryption differs");
        });
      } else {
        expectError(`consult envelope ${v.name}`, v.error, () => c.openEnvelope(v.envelope, args));
      }
      count("consult");
    }
    // A thread key encrypts in its own thread only, and a wrap of it made here opens the same.
    attempt("consult thread key elsewhere", () => {
      const key = threadKeys[`${file.thread}/1`];
      const h = file.envelopes[0].envelope.header;
      try {
        c.encryptMessage(c.utf8("x"), {
          roomKey: key, head: { seq: h.chain_seq, hash: h.chain_head }, thread: file.thread + 1, sender: h.sender,
          clientMsgId: h.client_msg_id, signer: byUser[h.sender],
        });
        fail("consult thread key elsewhere", "accepted");
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
      }
      const [wrapper, recipient] = [ids[file.wraps[0].wrapper], ids[file.wraps[0].recipient]];
      const mine = c.unwrapRoomKey(c.parseWrapRecord(c.wrapRoomKey(key, recipient.public, wrapper)), recipient, wrapper.public);
      if (!c.sameRoomKey(mine, key)) fail("consult thread key wrap round trip", "differs");
    });
    for (const v of file.invalid_chains) {
      try {
        c.replayMembershipChain(parseChain(v.chain), { adminKey: consultAdmin, keys: consultKeys });
        fail(`consult chain ${v.name}`, "accepted");
      } catch (error) {
        if (error.code !== v.error || error.data?.statement_index !== v.statement_index) {
          fail(`consult chain ${v.name}`, `got ${error.code} at ${error.data?.statement_index}: ${error.message}`);
        }
      }
      count("consult");
    }
  }

  // stream.json: decrypt; re-encrypt to the same length and prefix, which decrypts too.
  {
    const file = vectors.stream;
    const key = b64(file.key);
    for (const v of file.valid) {
      attempt(`stream ${v.name}`, () => {
        const stream = b64(v.stream);
        const plain = c.decryptStream(key, stream, { expectedSha256: c.fromHex(v.sha256) });
        if (!same(plain, b64(v.plaintext))) fail(`stream ${v.name}`, "plaintext differs");
        const again = c.encryptStream(key, plain, file.chunk_size);
        if (again.size !== v.size || again.chunks !== v.chunks || !same(again.stream.subarray(0, 9), stream.subarray(0, 9))) fail(`stream ${v.name}`, "re-encryption shape differs");
        if (!same(c.decryptStream(key, again.stream, { expectedSha256: again.sha256 }), plain)) fail(`stream ${v.name}`, "re-encryption does not decrypt");
      });
      count("stream");
    }
    for (const v of file.invalid) {
      expectError(`stream ${v.name}`, v.error, () => c.decryptStream(key, b64(v.stream)));
      count("stream");
    }
  }

  // backup.json: open with both spellings, seal again to exactly the blob.
  {
    const file = vectors.backup;
    const ids = identities(file);
    for (const v of file.valid) {
      attempt(`backup ${v.name}`, () => {
        const blob = b64(v.blob);
        for (const secret of [v.secret, v.also_opens_with]) {
          const opened = c.openBackup(blob, secret);
          if (opened.fingerprint !== ids[v.identity].fingerprint) fail(`backup ${v.name}`, "identity differs");
        }
        const again = c.sealBackup(ids[v.identity], v.secret, {
          userChosen: v.user_chosen, opslimit: v.opslimit, memlimit: v.memlimit, salt: b64(v.salt), nonce: b64(v.nonce),
        });
        if (!same(again, blob)) fail(`backup ${v.name}`, "re-sealing differs");
      });
      count("backup");
    }
    for (const v of file.invalid) {
      expectError(`backup ${v.name}`, v.error, () => c.openBackup(b64(v.blob), v.secret));
      count("backup");
    }
    expectError("weak passphrase", "weak_passphrase", () => c.checkPassphraseStrength("aaaaaaaaaaaaaaaa"));
    expectError("digits only", "weak_passphrase", () => c.checkPassphraseStrength("1234567812345678"));
    c.checkPassphraseStrength("correct horse battery staple");
    const secret = c.generateRecoverySecret();
    if (!/^([0-9A-HJKMNP-TV-Z]{4}-){6}[0-9A-HJKMNP-TV-Z]{4}$/.test(secret)) fail("generated secret", secret);
  }
  return { failures, checked };
}

// Project Wycheproof (tests/vectors/wycheproof/) against libsodium-wrappers-sumo,
// the same calls as tests/crypto/test_wycheproof.py makes with PyNaCl. `sodium`
// is /app/js/crypto/sodium.js's default export, `c` /app/js/crypto.js.
// Returns {failures, checked (per file), acceptable: {accepted, refused}} for
// X25519, the only file with "acceptable" cases.
async function checkWycheproof(sodium, c, files) {
  const failures = [];
  const checked = {};
  const fail = (what, detail) => failures.push(`${what}: ${detail}`);
  const hex = (t) => c.fromHex(t);
  const same = (a, b) => c.equalBytes(a, b);
  const tests = (file) => file.testGroups.flatMap((group) => group.tests.map((test) => [group, test]));
  const X25519_P = 2n ** 255n - 19n;
  const littleEndian = (bytes) => bytes.reduceRight((n, b) => (n << 8n) | BigInt(b), 0n);
  // A fixed, valid identity to pair a test key with in publicIdentity.
  const fixed = c.identityFromBytes(sodium.crypto_hash_sha512(c.utf8("rounds-test/wycheproof")));

  // Ed25519: verify as identity.js verify() does, without a context: 64 bytes, then libsodium.
  checked.ed25519 = 0;
  for (const [group, t] of tests(files.ed25519)) {
    const pk = hex(group.publicKey.pk);
    if (!sodium.crypto_core_ed25519_is_valid_point(pk)) fail(`ed25519 ${t.tcId}`, "test key is not a valid point");
    const sig = hex(t.sig);
    let accepted;
    try {
      accepted = sig.length === 64 && sodium.crypto_sign_verify_detached(sig, hex(t.msg), pk);
    } catch {
      accepted = false;
    }
    if (accepted !== (t.result === "valid")) fail(`ed25519 ${t.tcId}`, `${t.result} but ${accepted ? "accepted" : "refused"}`);
    checked.ed25519++;
  }

  // X25519: valid cases give the shared secret; acceptable ones too, except a
  // zero shared secret (a low-order public key), which libsodium refuses.
  checked.x25519 = 0;
  const acceptable = { accepted: 0, refused: 0 };
  const seen = new Set();
  for (const [, t] of tests(files.x25519)) {
    const pub = hex(t.public);
    const zero = /^(00)+$/.test(t.shared);
    let shared = null;
    try {
      shared = sodium.crypto_scalarmult(hex(t.private), pub);
    } catch {
      shared = null;
    }
    if (t.result === "valid" && (shared === null || !same(shared, hex(t.shared)))) fail(`x25519 ${t.tcId}`, "valid but not the shared secret");
    if (t.result === "invalid" && shared !== null) fail(`x25519 ${t.tcId}`, "invalid but accepted");
    if (t.result === "acceptable") {
      if (zero ? shared !== null : shared === null || !same(shared, hex(t.shared))) fail(`x25519 ${t.tcId}`, `acceptable, ${shared ? "accepted" : "refused"}`);
      acceptable[shared === null ? "refused" : "accepted"]++;
    }
    // publicIdentity refuses exactly the non-canonical keys and the low-order ones.
    if (!seen.has(t.public)) {
      seen.add(t.public);
      const refuse = littleEndian(pub) >= X25519_P || zero;
      try {
        c.publicIdentity(pub, fixed.public.ed25519);
        if (refuse) fail(`x25519 ${t.tcId}`, "publicIdentity accepts a non-canonical or low-order key");
      } catch (error) {
        if (!refuse || error.code !== "invalid_key") fail(`x25519 ${t.tcId}`, `publicIdentity: ${error.code || error}`);
      }
    }
    checked.x25519++;
  }

  // XChaCha20-Poly1305-IETF: valid cases encrypt to ct ‖ tag and decrypt to msg; invalid ones are refused.
  checked.xchacha20_poly1305 = 0;
  for (const [, t] of tests(files.xchacha20_poly1305)) {
    const [key, nonce, aad, msg] = [hex(t.key), hex(t.iv), hex(t.aad), hex(t.msg)];
    const sealed = c.concat(hex(t.ct), hex(t.tag));
    let opened = null;
    try {
      opened = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed, aad, nonce, key);
    } catch {
      opened = null;
    }
    let encrypted = null;
    try {
      encrypted = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, aad, null, nonce, key);
    } catch {
      encrypted = null;
    }
    if (t.result === "valid") {
      if (opened === null || !same(opened, msg)) fail(`xchacha20 ${t.tcId}`, "valid but does not decrypt");
      if (encrypted === null || !same(encrypted, sealed)) fail(`xchacha20 ${t.tcId}`, "valid but encrypts differently");
    } else {
      if (opened !== null) fail(`xchacha20 ${t.tcId}`, "invalid but decrypts");
      if (nonce.length !== 24 && encrypted !== null) fail(`xchacha20 ${t.tcId}`, "encrypts with a nonce of the wrong size");
    }
    checked.xchacha20_poly1305++;
  }
  return { failures, checked, acceptable };
}
