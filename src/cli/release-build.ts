import { mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildBundle, generateKeyFiles, type BuiltBundle } from "../update/bundle.js";
import { describeError, UpdateErrorCode } from "../update/errors.js";
import { keyIdFromFileName } from "../update/keys.js";
import { architectures, type Architecture } from "../update/manifest.js";
import { ReleaseBuildError, stageRelease } from "../update/stage-release.js";
import { projectDir } from "../kernel/project-dir.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

/**
 * The release tools an operator runs on a build machine: a signing key pair, and one signed
 * bundle per box architecture. Run from the built CLI (`lanekeeper release …`); the files in
 * scripts/ call these same commands.
 */

/** The project this CLI belongs to. */
const ownProjectDir = projectDir();

const keygenOptions = {
  out: { type: "string", value: "<dir>", describe: "directory for the two key files; required" },
  id: { type: "string", value: "<key id>", describe: "the key's id (file names and bundle manifests)", defaultText: "k-<fingerprint of the new key>" },
} as const satisfies OptionSpecs;

export const releaseKeygenCommand: CliCommand = {
  name: "release keygen",
  usage: "lanekeeper release keygen --out <dir> [--id <key id>]",
  summary: "write a new Ed25519 release-signing key pair (<id>.private.pem stays offline, <id>.pub.pem goes to the boxes)",
  options: keygenOptions,
  examples: ["lanekeeper release keygen --out ~/release-keys --id release-2026"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: keygenOptions });
    if (!values.out || positionals.length > 0) throw new UsageError("release keygen needs --out <dir> and nothing else");
    try {
      const keys = await generateKeyFiles({ outDir: values.out, ...(values.id ? { id: values.id } : {}) });
      console.log(`key id:      ${keys.id}`);
      console.log(`private key: ${keys.privateKeyFile} (keep it off the boxes)`);
      console.log(`public key:  ${keys.publicKeyFile}`);
      console.log(`config:      "update": { "trustedKeys": [${JSON.stringify({ id: keys.id, publicKeyPem: keys.publicKeyPem })}] }`);
      return 0;
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === "EEXIST" ? "a key with this id already exists there (a release key is never overwritten)" : (error as Error).message;
      console.error(`release keygen failed: ${why}`);
      return 1;
    }
  },
};

function parseArchitectures(text: string | undefined): Architecture[] | undefined {
  if (text === undefined) return undefined;
  const list = text
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  const unknown = list.filter((a) => !(architectures as readonly string[]).includes(a));
  if (list.length === 0 || unknown.length > 0) throw new UsageError(`--arch takes ${architectures.join(", ")} (comma-separated); got ${JSON.stringify(text)}`);
  return [...new Set(list)] as Architecture[];
}

const bundleExtension = /\.(tar\.gz|tgz|tar)$/;

/** `--out` names a bundle file when it ends like one; its ending must say whether it is gzipped. */
function outputFor(out: string, gzip: boolean, stem: string, count: number): string {
  if (!bundleExtension.test(out)) return join(out, `${stem}${gzip ? ".tar.gz" : ".tar"}`);
  if (count > 1) throw new UsageError(`--out ${out} names one file, but ${count} bundles are built; give a directory`);
  const isGzipName = /\.(tar\.gz|tgz)$/.test(out);
  if (isGzipName !== gzip) throw new UsageError(`--out ${out}: the bundle is ${gzip ? "gzipped, so name it .tar.gz" : "not gzipped (--no-gzip), so name it .tar"}`);
  return out;
}

function printBuilt(built: BuiltBundle): void {
  const m = built.manifest;
  console.log(`bundle:  ${built.outFile}`);
  console.log(`arch:    ${m.architectures.join(", ")}${m.nodeModuleVersion ? ` (Node ABI ${m.nodeModuleVersion})` : ""}`);
  console.log(`files:   ${m.files.length}, ${built.size} bytes packed`);
  const native = m.native ?? [];
  if (native.length === 0) console.log("native:  none");
  native.forEach((n, i) => console.log(`${i === 0 ? "native: " : "        "} ${n.path} (${n.machine})`));
  console.log(`job:     ${JSON.stringify({ v: 1, type: "update", version: m.version, url: "<where you host it>", sha256: built.sha256, size: built.size })}`);
}

const buildOptions = {
  arch: { type: "string", value: "<arm64|armhf|x64>[,...]", describe: "box architectures, one bundle each; required unless --files" },
  key: { type: "string", value: "<private.pem>", describe: "the release-signing private key; required" },
  "key-id": { type: "string", value: "<id>", describe: "the key's id in the manifest", defaultText: "the key file's name without .private.pem" },
  out: { type: "string", value: "<dir>|<file.tar.gz>", describe: "where bundles are written", defaultText: "." },
  version: { type: "string", value: "<v>", describe: "the release version", defaultText: "package.json's version" },
  "min-compatible": { type: "string", value: "<v>", describe: "oldest version this bundle may install over" },
  source: { type: "string", value: "<project dir>", describe: "the checkout to bundle", defaultText: "this installation" },
  files: { type: "string", value: "<a,b>", describe: "bundle these paths of a prepared tree as they are (no staging)" },
  "no-gzip": { type: "boolean", describe: "write a plain .tar" },
  nodedir: { type: "string", value: "<dir>", describe: "Node headers for cross-building native addons" },
  "node-gyp": { type: "string", value: "<node-gyp.js>", describe: "the node-gyp to cross-build with" },
  "keep-stage": { type: "boolean", describe: "keep the staging directory (printed) for inspection" },
} as const satisfies OptionSpecs;

export const releaseBuildCommand: CliCommand = {
  name: "release build",
  usage:
    "lanekeeper release build --arch <arm64|armhf|x64>[,...] --key <private.pem> [--out <dir>|<file.tar.gz>] [--key-id id] [--version v] [--min-compatible v] " +
    "[--source <project dir>] [--files a,b] [--no-gzip] [--nodedir <dir>] [--node-gyp <node-gyp.js>] [--keep-stage]",
  summary: "build and sign one release bundle per box architecture, native addons cross-built for it, no dev packages",
  options: buildOptions,
  notes: ["Run from a checkout after npm ci and npm run build. Prints for each bundle the update job to publish (sha256 and size)."],
  examples: ["lanekeeper release build --arch arm64,armhf --key ~/release-keys/release-2026.private.pem --out dist-bundles/"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: buildOptions });
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(" ")}`);
    if (!values.key) throw new UsageError("--key <private.pem> is required");
    const arch = parseArchitectures(values.arch);
    const files = values.files
      ?.split(",")
      .map((f) => f.trim())
      .filter(Boolean);
    // A project build stages per architecture; --files bundles a prepared tree exactly as it is.
    if (!files && !arch) throw new UsageError("--arch is required: say which boxes the bundle is for (arm64 for Pi 4/5 64-bit, armhf for 32-bit Pi OS, x64)");
    const gzip = !values["no-gzip"];
    const out = resolve(values.out ?? ".");
    const sourceDir = resolve(values.source ?? ownProjectDir);
    let privateKeyPem: string;
    try {
      privateKeyPem = await readFile(values.key, "utf8");
    } catch (error) {
      console.error(`release build failed: cannot read the key ${values.key}: ${(error as Error).message}`);
      return 1;
    }
    const common = {
      privateKeyPem,
      keyId: values["key-id"] ?? keyIdFromFileName(values.key).replace(/\.private$/, ""),
      gzip,
      ...(values.version ? { version: values.version } : {}),
      ...(values["min-compatible"] ? { minCompatibleVersion: values["min-compatible"] } : {}),
    };
    let version = values.version;
    if (!version) {
      try {
        version = (JSON.parse(await readFile(join(sourceDir, "package.json"), "utf8")) as { version?: string }).version;
      } catch {
        // buildBundle names the problem
      }
    }
    const stem = (label: string | undefined): string => `lanekeeper-${version ?? "unversioned"}${label ? `-${label}` : ""}`;

    try {
      if (files) {
        const outFile = outputFor(out, gzip, stem(arch?.join("+")), 1);
        const built = await buildBundle({ ...common, sourceDir, outFile, files, ...(arch ? { architectures: arch } : {}) });
        const only = built.manifest.architectures.length === 1 ? built.manifest.architectures[0] : undefined;
        if (!arch && only && !bundleExtension.test(out)) {
          // Its native files made it a one-architecture bundle: the name says which.
          const named = outputFor(out, gzip, stem(only), 1);
          await rename(outFile, named);
          built.outFile = named;
        }
        printBuilt(built);
        return 0;
      }
      const targets = arch ?? [];
      const outFiles = targets.map((a) => outputFor(out, gzip, stem(a), targets.length));
      for (const [i, target] of targets.entries()) {
        const work = await mkdtemp(join(tmpdir(), `lanekeeper-stage-${target}-`));
        try {
          const staged = await stageRelease({
            projectDir: sourceDir,
            stageDir: join(work, "app"),
            architecture: target,
            ...(values.nodedir ? { nodeDir: values.nodedir } : {}),
            ...(values["node-gyp"] ? { nodeGyp: values["node-gyp"] } : {}),
            log: (line) => console.error(`[${target}] ${line}`),
          });
          const roots: string[] = [];
          for (const root of ["dist", "panel", "package.json", "node_modules"])
            if (
              await stat(join(staged.stageDir, root)).then(
                () => true,
                () => false,
              )
            )
              roots.push(root);
          const built = await buildBundle({
            ...common,
            sourceDir: staged.stageDir,
            outFile: outFiles[i]!,
            files: roots,
            architectures: [target],
            nodeModuleVersion: staged.nodeModuleVersion,
          });
          printBuilt(built);
          if (values["keep-stage"]) console.error(`[${target}] stage kept at ${staged.stageDir}`);
        } finally {
          if (!values["keep-stage"]) await rm(work, { recursive: true, force: true });
        }
      }
      return 0;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      if (error instanceof ReleaseBuildError) {
        console.error(`release build failed: ${error.code}: ${error.message}`);
        return 1;
      }
      const { code, reason } = describeError(error, UpdateErrorCode.BundleFormat);
      console.error(`release build failed: ${code}: ${reason}`);
      return 1;
    }
  },
};

/** For the wrappers in scripts/: run a command as the CLI would (help, usage mistakes exit 2). */
export async function runAsScript(command: CliCommand, argv: string[]): Promise<number> {
  const { runCommand } = await import("./main.js");
  return runCommand(command, argv);
}
