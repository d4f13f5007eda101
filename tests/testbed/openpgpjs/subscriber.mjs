// OpenPGP.js (the engine inside Mailvelope and Proton) acting as a list
// subscriber for Conclave's interop tests. Each command reads and writes
// files, so the Rust testkit drives it like gpg, rnp and sq. Everything runs
// with OpenPGP.js's own defaults: nothing is forced to SEIPDv1.
//
//   node subscriber.mjs gen KIND USERID OUTDIR      KIND: cv25519 | rsa3072 | v6
//   node subscriber.mjs encrypt KEY|- CERT IN OUT   sign with KEY unless "-"
//   node subscriber.mjs sign-detached KEY IN OUT
//   node subscriber.mjs decrypt KEY IN OUT          prints the packet versions
//   node subscriber.mjs verify-detached CERT SIG DATA   prints the signer
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import * as openpgp from 'openpgp';

const read = (p) => readFile(p);
const readText = async (p) => (await readFile(p)).toString('utf8');

async function gen([kind, userID, outdir]) {
  // A User ID "Name <addr>" or a bare address.
  const m = /^(.*?)\s*<([^>]+)>$/.exec(userID);
  const user = m ? { name: m[1], email: m[2] } : { email: userID };
  const options = { userIDs: [user], format: 'armored' };
  if (kind === 'cv25519') {
    Object.assign(options, { type: 'ecc', curve: 'curve25519Legacy' });
  } else if (kind === 'rsa3072') {
    Object.assign(options, { type: 'rsa', rsaBits: 3072 });
  } else if (kind === 'v6') {
    Object.assign(options, { type: 'curve25519', config: { v6Keys: true } });
  } else {
    throw new Error(`unknown key kind ${kind}`);
  }
  const { privateKey, publicKey } = await openpgp.generateKey(options);
  await mkdir(outdir, { recursive: true });
  await writeFile(`${outdir}/key.asc`, privateKey);
  await writeFile(`${outdir}/pub.asc`, publicKey);
  const key = await openpgp.readKey({ armoredKey: publicKey });
  console.log(key.getFingerprint().toUpperCase());
}

async function encrypt([keyPath, certPath, input, output]) {
  const encryptionKeys = await openpgp.readKey({ armoredKey: await readText(certPath) });
  const options = {
    message: await openpgp.createMessage({ binary: await read(input) }),
    encryptionKeys,
    format: 'armored',
  };
  if (keyPath !== '-') {
    options.signingKeys = await openpgp.readPrivateKey({ armoredKey: await readText(keyPath) });
  }
  await writeFile(output, await openpgp.encrypt(options));
}

async function signDetached([keyPath, input, output]) {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: await readText(keyPath) });
  const sig = await openpgp.sign({
    message: await openpgp.createMessage({ binary: await read(input) }),
    signingKeys,
    detached: true,
    format: 'armored',
  });
  await writeFile(output, sig);
}

async function decrypt([keyPath, input, output]) {
  const decryptionKeys = await openpgp.readPrivateKey({ armoredKey: await readText(keyPath) });
  const message = await openpgp.readMessage({ armoredMessage: await readText(input) });
  const packets = message.packets.map((p) => `${p.constructor.tag}:v${p.version ?? ''}`);
  const { data } = await openpgp.decrypt({ message, decryptionKeys, format: 'binary' });
  await writeFile(output, data);
  console.log(JSON.stringify({ packets }));
}

async function verifyDetached([certPath, sigPath, dataPath]) {
  const verificationKeys = await openpgp.readKey({ armoredKey: await readText(certPath) });
  const signature = await openpgp.readSignature({ armoredSignature: await readText(sigPath) });
  const message = await openpgp.createMessage({ binary: await read(dataPath) });
  const { signatures } = await openpgp.verify({
    message,
    signature,
    verificationKeys,
    expectSigned: true,
  });
  for (const s of signatures) {
    await s.verified; // throws on a bad signature
  }
  console.log(verificationKeys.getFingerprint().toUpperCase());
}

const commands = {
  gen,
  encrypt,
  'sign-detached': signDetached,
  decrypt,
  'verify-detached': verifyDetached,
};

const [cmd, ...args] = process.argv.slice(2);
const run = commands[cmd];
if (!run) {
  console.error(`usage: subscriber.mjs ${Object.keys(commands).join('|')} ...`);
  process.exit(2);
}
try {
  await run(args);
} catch (e) {
  console.error(`openpgp.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
}
