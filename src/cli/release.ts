import { parseArgs } from "node:util";
import { readJsonFile } from "../config/load.js";
import { silentLogger } from "../kernel/log.js";
import { verifyBundle } from "../update/bundle.js";
import { updateConfigSchema } from "../update/config.js";
import { describeError, UpdateErrorCode } from "../update/errors.js";
import { loadTrustedKeyFile, type TrustedKey } from "../update/keys.js";
import { trustedKeyLoader } from "../update/setup.js";
import { UsageError, type CliCommand, type OptionSpecs } from "./command.js";

/** Keys named on the command line, or the trusted keys a config file gives a box. */
async function keysFrom(trusted: string[], configFile: string | undefined): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const file of trusted.flatMap((t) => t.split(",")).filter(Boolean)) keys.push(await loadTrustedKeyFile(file));
  if (configFile) {
    const read = await readJsonFile(configFile);
    if (!read.ok) throw new Error(read.problems.map((problem) => problem.message).join("; "));
    const raw = (read.raw ?? {}) as { update?: unknown };
    const section = updateConfigSchema.safeParse(raw.update ?? {});
    if (!section.success) {
      throw new Error(`${configFile}: update section: ${section.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
    keys.push(...(await trustedKeyLoader(section.data, silentLogger())()));
  }
  return keys;
}

const verifyOptions = {
  trusted: { type: "string", multiple: true, value: "<pub.pem>[,...]", describe: "trusted public key files" },
  config: { type: "string", short: "c", value: "<file>", describe: "a box config: the keys its update section trusts" },
} as const satisfies OptionSpecs;

export const releaseVerifyCommand: CliCommand = {
  name: "release verify",
  usage: "lanekeeper release verify <bundle> (--trusted <pub.pem>[,...] | --config <file>)",
  summary: "check a release bundle offline: signature by a trusted key, every file's hash, safe paths",
  options: verifyOptions,
  notes: ["Exit 0 when the bundle is good, 1 when it is rejected (the reason has a stable code)."],
  examples: ["lanekeeper release verify lanekeeper-0.2.0-arm64.tar.gz --trusted keys/release-2026.pub.pem"],
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: verifyOptions });
    const bundle = positionals[0];
    if (!bundle || positionals.length > 1) throw new UsageError("release verify takes exactly one bundle file");
    if (!values.trusted && !values.config) throw new UsageError("name the trusted public keys with --trusted or a box config with --config");
    let keys: TrustedKey[];
    try {
      keys = await keysFrom(values.trusted ?? [], values.config);
    } catch (error) {
      console.error(`${bundle}: cannot load the trusted keys: ${(error as Error).message}`);
      return 1;
    }
    if (keys.length === 0) {
      console.error(`${bundle}: REJECTED — no trusted keys to check it with`);
      return 1;
    }
    try {
      const verified = await verifyBundle(bundle, keys);
      const m = verified.manifest;
      console.log(
        `${bundle}: OK — ${m.name} ${m.version} (installs over ${m.minCompatibleVersion} or newer; ${m.architectures.join(", ")}), ` +
          `${verified.fileCount} files, ${verified.totalBytes} bytes, signed by "${verified.key.id}", created ${m.createdAt}`,
      );
      // The machines come from the files' own ELF headers (checked against the manifest's list).
      if (verified.native.length === 0) console.log("native files: none (runs on any architecture)");
      else console.log(`native files: ${verified.native.length}${m.nodeModuleVersion ? `, compiled for Node ABI ${m.nodeModuleVersion}` : ""}`);
      for (const n of verified.native) console.log(`  ${n.machine.padEnd(7)} ${n.path}  sha256:${n.sha256.slice(0, 16)}…`);
      return 0;
    } catch (error) {
      const { code, reason } = describeError(error, UpdateErrorCode.BundleFormat);
      console.error(`${bundle}: REJECTED — ${code}: ${reason}`);
      return 1;
    }
  },
};
