import { createPublicKey } from "node:crypto";
import { z } from "zod";
import { keyIdSchema } from "./keys.js";

/**
 * The `update` section of the config (docs/mqtt.md §7). Public keys are not secrets, so
 * they may sit in the config; more can come from files in `trustedKeysDir` (the USB stick's
 * `update-keys/` lands there).
 */
export const trustedKeyConfigSchema = z.strictObject({
  id: keyIdSchema,
  publicKeyPem: z.string().refine(
    (pem) => {
      if (/PRIVATE KEY-----/.test(pem)) return false;
      try {
        return createPublicKey(pem).asymmetricKeyType === "ed25519";
      } catch {
        return false;
      }
    },
    { message: "must be an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)" },
  ),
});

export const updateConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Holds `current`, `releases/`, `staging/` and `update-state.json` (scripts/install.sh layout). */
  root: z.string().min(1).default("/opt/lanekeeper"),
  trustedKeys: z.array(trustedKeyConfigSchema).default([]),
  trustedKeysDir: z.string().min(1).default("/etc/lanekeeper/update-keys"),
  /** Releases kept on disk; the current and the previous one are never pruned. */
  keepReleases: z.int().min(2).max(20).default(3),
  /** The new version must report healthy within this window or it is rolled back. */
  healthWindowS: z.int().min(5).max(3600).default(120),
  /** A job waits this long for every lane to be idle, then fails with "lanes busy". */
  idleWaitS: z.int().min(0).max(86_400).default(600),
  /** Which links the health check demands besides lanes and store. */
  healthRequires: z.enum(["platform-or-mqtt", "platform", "mqtt", "local"]).default("platform-or-mqtt"),
  /** How the box restarts itself; `--no-block` so systemd does not wait on the caller it kills. */
  restartCommand: z.array(z.string().min(1)).min(1).default(["systemctl", "--no-block", "restart", "lanekeeper"]),
  download: z
    .strictObject({
      attempts: z.int().min(1).max(50).default(8),
      /** No byte for this long aborts the request (it is then resumed with Range). */
      stallTimeoutS: z.int().min(5).max(600).default(60),
      /** PEM file of CA certificates trusted for https bundle URLs besides the system's (a private update server). */
      caFile: z.string().min(1).optional(),
    })
    .prefault({}),
});
export type UpdateConfig = z.infer<typeof updateConfigSchema>;
