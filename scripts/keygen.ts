// Writes a new Ed25519 release-signing key pair: <out>/<id>.private.pem (keep it offline) and
// <out>/<id>.pub.pem (goes into update.trustedKeys or a stick's update-keys/).
//   node --import tsx scripts/keygen.ts --out keys/ [--id release-2025]
import { parseArgs } from "node:util";
import { generateKeyFiles } from "../src/update/bundle.js";

const { values } = parseArgs({ options: { out: { type: "string" }, id: { type: "string" } } });
if (!values.out) {
  console.error("usage: node --import tsx scripts/keygen.ts --out <dir> [--id <key id>]");
  process.exit(2);
}
try {
  const keys = await generateKeyFiles({ outDir: values.out, ...(values.id ? { id: values.id } : {}) });
  console.log(`key id:      ${keys.id}`);
  console.log(`private key: ${keys.privateKeyFile} (keep it off the boxes)`);
  console.log(`public key:  ${keys.publicKeyFile}`);
  console.log(`config:      "update": { "trustedKeys": [${JSON.stringify({ id: keys.id, publicKeyPem: keys.publicKeyPem })}] }`);
} catch (error) {
  console.error(`keygen failed: ${(error as Error).message}`);
  process.exit(1);
}
