import { z } from "zod";
import { commandSource, defaultClockSyncSources, timedatectlSource, timesyncdFlagSource, type ClockSyncSource } from "./clock-sync.js";

/**
 * The optional `system` config section (running under systemd, systemd/README.md). Every key
 * has a default, so a config without the section behaves as documented here. To enable it the
 * root schema adds `system: systemConfigSchema.prefault({})`.
 */
export const systemConfigSchema = z
  .strictObject({
    watchdog: z
      .strictObject({
        /** A watchdog tick whose window saw a larger event-loop delay sends no ping. */
        maxLagMs: z.int().min(50).max(60_000).optional(),
      })
      .prefault({}),
    clockSync: z
      .strictObject({
        /**
         * auto: timedatectl, then systemd-timesyncd's flag file. command: `command` exits 0 when
         * synchronised, 1 when not. off: always "unknown".
         */
        source: z.enum(["auto", "timedatectl", "timesyncd", "command", "off"]).default("auto"),
        command: z.array(z.string().min(1)).min(1).optional(),
        recheckUnsyncedS: z.int().min(5).max(3600).default(30),
        recheckSyncedS: z.int().min(60).max(86_400).default(600),
      })
      .prefault({})
      .refine((section) => section.source !== "command" || section.command !== undefined, {
        message: 'source "command" needs `command` (e.g. ["chronyc", "waitsync", "1", "0.1"])',
        path: ["command"],
      }),
  })
  .prefault({});

export type SystemConfig = z.infer<typeof systemConfigSchema>;

export function clockSyncSourcesFromConfig(section: SystemConfig["clockSync"]): ClockSyncSource[] {
  switch (section.source) {
    case "auto":
      return defaultClockSyncSources();
    case "timedatectl":
      return [timedatectlSource()];
    case "timesyncd":
      return [timesyncdFlagSource()];
    case "command":
      return section.command ? [commandSource(section.command)] : [];
    case "off":
      return [];
  }
}
