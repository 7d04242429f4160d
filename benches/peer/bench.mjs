// The JS peer of `cargo bench -p vouch-core --bench credential`: the same
// 12-course transcript (fixture.json, checked against the Rust sample by
// core/tests/it/peer_fixture.rs) issued, presented (3 courses + KB-JWT) and
// verified with @sd-jwt/sd-jwt-vc, EdDSA through node:crypto (OpenSSL).
//
// Like the Rust bench, each rate is measured interleaved with the raw
// Ed25519 rate it is compared to (alternating slices over the same seconds),
// so a drifting shared machine moves both alike.
//
//   npm ci --prefix benches/peer && node benches/peer/bench.mjs
//   (or scripts/peer-bench, which also runs the Rust bench beside it)
//
// PEER_BENCH_SECONDS (default 3) sets the seconds per comparison.

import { readFileSync } from 'node:fs';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { digest, generateSalt } from '@sd-jwt/crypto-nodejs';

const fixture = JSON.parse(readFileSync(new URL('./fixture.json', import.meta.url), 'utf8'));
const SECONDS = Number(process.env.PEER_BENCH_SECONDS ?? 3);
if (!(SECONDS > 0)) {
  throw new Error(`PEER_BENCH_SECONDS must be a positive number, not ${process.env.PEER_BENCH_SECONDS}`);
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Base58btc of `bytes` (big-endian base conversion). */
function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = BASE58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

/** The did:key of an Ed25519 public key object. */
function didKey(publicKey) {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  return 'did:key:z' + base58(Buffer.concat([Buffer.from([0xed, 0x01]), raw]));
}

const signerOf = (privateKey) => (data) => sign(null, Buffer.from(data), privateKey).toString('base64url');
const verifierOf = (publicKey) => (data, sig) =>
  verify(null, Buffer.from(data), publicKey, Buffer.from(sig, 'base64url'));

const issuer = generateKeyPairSync('ed25519');
const holder = generateKeyPairSync('ed25519');
const iss = didKey(issuer.publicKey);

const instance = new SDJwtVcInstance({
  signer: signerOf(issuer.privateKey),
  signAlg: 'EdDSA',
  verifier: verifierOf(issuer.publicKey),
  kbSigner: signerOf(holder.privateKey),
  kbSignAlg: 'EdDSA',
  // As Vouch does, the holder key is read from the credential's cnf.jwk
  // for every verification.
  kbVerifier: (data, sig, payload) =>
    verify(null, Buffer.from(data), createPublicKey({ key: payload.cnf.jwk, format: 'jwk' }),
      Buffer.from(sig, 'base64url')),
  hasher: digest,
  hashAlg: 'sha-256',
  saltGenerator: generateSalt,
});
// The Rust side of this comparison (`vc::verify_presentation`) does not read
// the status list either (a verifier reads it from its chain replica), so
// the peer does not fetch one.
instance.verifyStatus = async () => {};

const payload = {
  iss,
  iat: fixture.iat,
  exp: fixture.exp,
  vct: fixture.vct,
  cnf: { jwk: holder.publicKey.export({ format: 'jwk' }) },
  status: fixture.status,
  ...fixture.claims,
};
const disclosureFrame = {
  _sd: fixture.selectively_disclosable,
  courses: { _sd: fixture.claims.courses.map((_, i) => i) },
};
const presentationFrame = {
  courses: Object.fromEntries(fixture.disclosed_courses.map((i) => [i, true])),
};
const header = { kid: `${iss}#${iss.slice('did:key:'.length)}` };

const issue = () => instance.issue(payload, disclosureFrame, { header });
const present = (credential) =>
  instance.present(credential, presentationFrame, {
    kb: { payload: { aud: fixture.aud, nonce: fixture.nonce, iat: fixture.now } },
  });
const check = (presentation) =>
  instance.verify(presentation, { keyBindingNonce: fixture.nonce, currentDate: fixture.now });

const credential = await issue();
const presentation = await present(credential);
const verified = await check(presentation);
if (verified.kb === undefined || verified.payload.courses.length !== fixture.disclosed_courses.length) {
  throw new Error('the peer presentation did not verify as expected');
}
const signingInput = credential.split('~')[0].split('.').slice(0, 2).join('.');
const rawMessage = Buffer.from(signingInput);
const rawSignature = sign(null, rawMessage, issuer.privateKey);

/** Runs `op` and `raw` in alternating slices of 50 over SECONDS; rates per second. */
async function interleaved(op, raw) {
  let opTime = 0;
  let rawTime = 0;
  let opCount = 0;
  let rawCount = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    let t = performance.now();
    for (let i = 0; i < 50; i++) await op();
    opTime += performance.now() - t;
    opCount += 50;
    t = performance.now();
    for (let i = 0; i < 50; i++) raw();
    rawTime += performance.now() - t;
    rawCount += 50;
  }
  return { rate: (opCount * 1000) / opTime, raw: (rawCount * 1000) / rawTime };
}

const rawSign = () => sign(null, rawMessage, issuer.privateKey);
const rawVerify = () => {
  if (!verify(null, rawMessage, issuer.publicKey, rawSignature)) throw new Error('raw verify failed');
};

const issued = await interleaved(issue, rawSign);
const presented = await interleaved(() => present(credential), rawSign);
const checked = await interleaved(() => check(presentation), rawVerify);

const pct = (r) => `${Math.round((100 * r.rate) / r.raw)}%`;
const rate = (x) => String(Math.round(x)).padStart(6);
console.log(`== JS peer: @sd-jwt/sd-jwt-vc 0.17.1 on node ${process.version} (${rawMessage.length} byte signing input) ==`);
console.log(`raw node:crypto Ed25519 sign   ${rate(issued.raw)} /s`);
console.log(`raw node:crypto Ed25519 verify ${rate(checked.raw)} /s`);
console.log(`issue (12 courses)             ${rate(issued.rate)} /s  = ${pct(issued)} of raw sign`);
console.log(`present 3 + KB-JWT             ${rate(presented.rate)} /s  = ${pct(presented)} of raw sign`);
console.log(`verify presentation            ${rate(checked.rate)} /s  = ${pct(checked)} of raw verify`);
console.log(`credential ${credential.length} chars, presentation ${presentation.length} chars`);
