// Builds and signs a release bundle of the built app (dist/, package.json, production
// node_modules) or of a custom source tree:
//   node --import tsx scripts/build-bundle.ts --key keys/release.private.pem --out out/lanekeeper-0.2.0.tar
//        [--version 0.2.0] [--key-id release] [--min-compatible 0.1.0] [--source dir] [--files a,b]
//        [--arch arm64,armhf,x64] [--no-gzip]
// Prints the job fields (version, sha256, size) an update job needs.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildBundle } from "../src/update/bundle.js";
import { keyIdFromFileName } from "../src/update/keys.js";
import { architectures, type Architecture } from "../src/update/manifest.js";

const { values } = parseArgs({
  options: {
    key: { type: "string" },
    "key-id": { type: "string" },
    out: { type: "string" },
    version: { type: "string" },
    "min-compatible": { type: "string" },
    source: { type: "string" },
    files: { type: "string" },
    arch: { type: "string" },
    "no-gzip": { type: "boolean" },
  },
});
if (!values.key || !values.out) {
  console.error("usage: node --import tsx scripts/build-bundle.ts --key <private.pem> --out <file> [--version v] [--key-id id] [--min-compatible v] [--source dir] [--files a,b] [--arch list] [--no-gzip]");
  process.exit(2);
}
const arch = values.arch?.split(",").map((a) => a.trim());
if (arch && !arch.every((a): a is Architecture => (architectures as readonly string[]).includes(a))) {
  console.error(`--arch must list some of ${architectures.join(", ")}`);
  process.exit(2);
}
try {
  const built = await buildBundle({
    sourceDir: resolve(values.source ?? "."),
    outFile: resolve(values.out),
    privateKeyPem: await readFile(values.key, "utf8"),
    keyId: values["key-id"] ?? keyIdFromFileName(values.key).replace(/\.private$/, ""),
    ...(values.files ? { files: values.files.split(",").map((f) => f.trim()).filter(Boolean) } : {}),
    ...(values.version ? { version: values.version } : {}),
    ...(values["min-compatible"] ? { minCompatibleVersion: values["min-compatible"] } : {}),
    ...(arch ? { architectures: arch } : {}),
    ...(values["no-gzip"] ? { gzip: false } : {}),
  });
  console.log(`bundle:  ${built.outFile}`);
  console.log(`files:   ${built.manifest.files.length}`);
  console.log(`job:     ${JSON.stringify({ v: 1, type: "update", version: built.manifest.version, url: "<where you host it>", sha256: built.sha256, size: built.size })}`);
} catch (error) {
  console.error(`build-bundle failed: ${(error as Error).message}`);
  process.exit(1);
}
