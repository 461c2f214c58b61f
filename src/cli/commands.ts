import type { CliCommand } from "./command.js";

/** A subcommand's name, and how to load it: only the command being run is imported. */
export interface CommandEntry {
  name: string;
  load(): Promise<CliCommand>;
}

/**
 * Every subcommand; add one line per new command file in src/cli/. Loaded on demand, so
 * `lanekeeper run` does not carry the emulator, the release tools or the provisioning code
 * (start-up time and idle memory on the box). A test checks each name against its module.
 */
export const commands: CommandEntry[] = [
  { name: "run", load: async () => (await import("./run.js")).runCommand },
  { name: "demo", load: async () => (await import("./demo.js")).demoCommand },
  { name: "config check", load: async () => (await import("./config-check.js")).configCheckCommand },
  { name: "fee", load: async () => (await import("./fee.js")).feeCommand },
  { name: "emulator", load: async () => (await import("./emulator.js")).emulatorCommand },
  { name: "emulator call", load: async () => (await import("./emulator.js")).emulatorCallCommand },
  { name: "sign", load: async () => (await import("./sign.js")).signCommand },
  { name: "selftest", load: async () => (await import("./selftest.js")).selftestCommand },
  { name: "release verify", load: async () => (await import("./release.js")).releaseVerifyCommand },
  { name: "release keygen", load: async () => (await import("./release-build.js")).releaseKeygenCommand },
  { name: "release build", load: async () => (await import("./release-build.js")).releaseBuildCommand },
  { name: "provision", load: async () => (await import("./provision.js")).provisionCommand },
  { name: "fleet ls", load: async () => (await import("../console/ls.js")).fleetLsCommand },
  { name: "fleet watch", load: async () => (await import("../console/watch.js")).fleetWatchCommand },
  { name: "fleet cmd", load: async () => (await import("../console/cmd.js")).fleetCmdCommand },
  { name: "fleet config", load: async () => (await import("../console/config.js")).fleetConfigCommand },
  { name: "fleet rollout", load: async () => (await import("../console/rollout.js")).fleetRolloutCommand },
];
