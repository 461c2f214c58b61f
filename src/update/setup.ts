import type { Logger } from "../kernel/log.js";
import type { UpdateAgentOptions } from "./agent.js";
import type { UpdateConfig } from "./config.js";
import { loadTrustedKeysDir, trustedKeyFromPem, type TrustedKey } from "./keys.js";

/**
 * The trusted keys of a box: those in `update.trustedKeys` plus every `*.pem` in
 * `update.trustedKeysDir`. Read at every job, so keys put there by a provisioning stick count
 * without a restart. Unreadable key files are logged and skipped (they never widen trust).
 */
export function trustedKeyLoader(config: Pick<UpdateConfig, "trustedKeys" | "trustedKeysDir">, log: Logger): () => Promise<TrustedKey[]> {
  const fromConfig = config.trustedKeys.map((k, i) => trustedKeyFromPem(k.id, k.publicKeyPem, `update.trustedKeys[${i}]`));
  return async () => {
    const { keys, problems } = await loadTrustedKeysDir(config.trustedKeysDir);
    for (const problem of problems) log.warn({ problem }, "skipping an unreadable trusted key file");
    return [...fromConfig, ...keys];
  };
}

/** Agent options that come from the `update` config section. */
export function agentOptionsFromConfig(
  config: UpdateConfig,
  log: Logger,
): Pick<UpdateAgentOptions, "root" | "trustedKeys" | "keepReleases" | "healthWindowMs" | "idleWaitMs" | "restartCommand" | "download"> {
  return {
    root: config.root,
    trustedKeys: trustedKeyLoader(config, log),
    keepReleases: config.keepReleases,
    healthWindowMs: config.healthWindowS * 1000,
    idleWaitMs: config.idleWaitS * 1000,
    restartCommand: config.restartCommand,
    download: {
      attempts: config.download.attempts,
      stallTimeoutMs: config.download.stallTimeoutS * 1000,
      ...(config.download.caFile === undefined ? {} : { caFile: config.download.caFile }),
    },
  };
}
