import { isDeepStrictEqual } from "node:util";
import { formatPath } from "../config/load.js";
import { configSchema } from "../config/schema.js";
import { ProvisionErrorCode, type ProvisionProblem } from "./errors.js";

/**
 * What a USB stick may set. The stick is a narrow door: it configures the lot, the lanes, the
 * links and their credentials, but it never names a command (provisioning runs as root) nor a
 * place on the box's disk. Four kinds of fields:
 *
 * - box-owned: directories and commands of the box itself. The stick may leave them out (the
 *   box's current value is kept, or the default on a fresh box) or repeat the box's value
 *   exactly (a stick made from a box's own config); any other value is refused.
 * - stick-file fields (`caFile`, `certFile`, `keyFile` of mqtt and platform): set only by
 *   provisioning, from the certificate files carried on the stick.
 * - serial device paths: only under /dev.
 * - anything else whose name says file, directory, root, path or command is refused, so a field
 *   added to the schema later is closed until it is listed here on purpose.
 */

type Pattern = readonly string[];

export const boxOwnedFields: readonly Pattern[] = [
  ["store", "dir"],
  ["update", "root"],
  ["update", "trustedKeysDir"],
  ["update", "restartCommand"],
  ["update", "download", "caFile"],
  ["hardware", "sysfsRoot"],
  ["system", "clockSync", "command"],
];

const stickFileFields: ReadonlyArray<{ pattern: Pattern; stickFile: string }> = [
  { pattern: ["mqtt", "caFile"], stickFile: "mqtt/ca.pem" },
  { pattern: ["mqtt", "certFile"], stickFile: "mqtt/client.pem" },
  { pattern: ["mqtt", "keyFile"], stickFile: "mqtt/client.key" },
  { pattern: ["platform", "caFile"], stickFile: "platform/ca.pem" },
  { pattern: ["platform", "certFile"], stickFile: "platform/client.pem" },
  { pattern: ["platform", "keyFile"], stickFile: "platform/client.key" },
];

const devicePathFields: readonly Pattern[] = [["serial", "*", "path"]];

/** Names that look like paths but are not the box's file system (URL paths, an MQTT topic). */
const notFilesystemFields: readonly Pattern[] = [
  ["platform", "pathTemplate"],
  ["platform", "servicePaths"],
  ["platform", "server", "path"],
  ["mqtt", "topicRoot"],
];

const pathLikeKey = /^(?:file|dir|directory|root|path|command|cmd|exec|script|program)s?$|[a-z0-9](?:File|Dir|Directory|Root|Path|Command|Cmd|Exec|Script|Program)s?$/;

/** /dev/<name>[/<name>...] with no "." or ".." component. */
const devicePath = /^\/dev(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._:+@,=-]+)+$/;

/** Deeper than any config (the deepest is about 7); JSON deeper than this is refused before any recursion. */
export const MAX_STICK_JSON_DEPTH = 32;

/** Maps whose keys are names chosen by the installer (a device, a tariff), not field names. */
const nameMaps: readonly Pattern[] = [["serial"], ["fees", "tariffs"]];

function matches(pattern: Pattern, path: ReadonlyArray<string | number>): boolean {
  return pattern.length === path.length && pattern.every((p, i) => p === "*" || p === String(path[i]));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function get(doc: unknown, path: ReadonlyArray<string | number>): unknown {
  let node = doc;
  for (const part of path) {
    const key = String(part);
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? "nothing";
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Depth of a parsed JSON value, without recursion (a hostile file may nest 100 000 levels). */
export function jsonDepth(value: unknown, stopAt = MAX_STICK_JSON_DEPTH + 1): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== "object") continue;
    const d = depth + 1;
    if (d > max) max = d;
    if (max >= stopAt) return max;
    for (const child of Object.values(node as Record<string, unknown>)) stack.push([child, d]);
  }
  return max;
}

/** The values a fresh box has for its own fields: the schema's defaults, the store in `stateDir`. */
export function freshBoxValues(stateDir: string): Record<string, unknown> {
  return {
    store: { dir: stateDir },
    update: configSchema.shape.update.parse(undefined),
    hardware: configSchema.shape.hardware.parse(undefined),
    system: configSchema.shape.system.parse(undefined),
  };
}

/**
 * Checks the stick's document against the allow-list and fills the box-owned fields it left out
 * from the box's current config. `doc` is changed in place; the returned problems refuse the stick.
 */
export function applyStickPolicy(doc: Record<string, unknown>, boxDoc: unknown, fresh: Record<string, unknown>): ProvisionProblem[] {
  const problems: ProvisionProblem[] = [];
  const boxValue = (path: ReadonlyArray<string | number>): unknown => {
    const current = get(boxDoc, path);
    return current !== undefined ? current : get(fresh, path);
  };

  const walk = (node: unknown, path: Array<string | number>): void => {
    if (Array.isArray(node)) {
      // Arrays hold lanes, tariffs' segments and plate lists: their items are walked for keys.
      node.forEach((item, i) => walk(item, [...path, i]));
      return;
    }
    if (!isPlainObject(node)) return;
    const namesHere = nameMaps.some((p) => matches(p, path));
    for (const [key, value] of Object.entries(node)) {
      const here = [...path, key];
      const shown = formatPath(here);
      if (boxOwnedFields.some((p) => matches(p, here))) {
        const box = boxValue(here);
        if (!isDeepStrictEqual(value, box)) {
          problems.push({
            path: shown,
            code: ProvisionErrorCode.BoxOwnedField,
            message: `is the box's own setting, not the stick's (the box has ${show(box)}); leave it out of lanekeeper.json`,
          });
        }
        continue;
      }
      const stickFile = stickFileFields.find((f) => matches(f.pattern, here));
      if (stickFile) {
        if (!isDeepStrictEqual(value, get(boxDoc, here))) {
          problems.push({ path: shown, code: ProvisionErrorCode.PathField, message: `names a file on the box; put the file on the stick as ${stickFile.stickFile} instead` });
        }
        continue;
      }
      if (devicePathFields.some((p) => matches(p, here))) {
        if (typeof value === "string" && !devicePath.test(value)) {
          problems.push({ path: shown, code: ProvisionErrorCode.DevicePath, message: "must be a serial device under /dev/ (e.g. /dev/serial/by-id/...)" });
        }
        continue;
      }
      if (notFilesystemFields.some((p) => matches(p, here))) continue;
      if (!namesHere && pathLikeKey.test(key)) {
        problems.push({ path: shown, code: ProvisionErrorCode.PathField, message: "names a file, a directory or a command; a USB stick may not set those" });
        continue;
      }
      walk(value, here);
    }
  };
  walk(doc, []);

  for (const path of boxOwnedFields) {
    if (get(doc, path) !== undefined) continue;
    const value = path[0] === "store" ? boxValue(path) : get(boxDoc, path);
    if (value === undefined) continue;
    let node: Record<string, unknown> = doc;
    let placed = true;
    for (const key of path.slice(0, -1)) {
      if (!Object.hasOwn(node, key)) node[key] = {};
      const next = node[key];
      if (!isPlainObject(next)) {
        placed = false; // a wrong type there: the schema check reports it
        break;
      }
      node = next;
    }
    if (placed) node[path.at(-1)!] = structuredClone(value);
  }
  return problems;
}
