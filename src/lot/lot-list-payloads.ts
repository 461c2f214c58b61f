import { z } from "zod";
import { blacklistEntrySchema, carGroupSchema, vehicleSchema } from "../store/records.js";
import type { ListName } from "../store/lists.js";
import { hlcSchema } from "./hlc.js";
import { LOT_PAYLOAD_VERSION, LotPayloadError, decode, type Decoded } from "./lot-payloads.js";
import { topicLevel } from "./lot-topics.js";

/*
 * The lists the lot shares (docs/mqtt.md "Lists shared by the lot"): one retained topic per
 * entry, `<topicRoot>/lot/<parkCode>/lists/<kind>/<key>`, holding the newest version of the
 * entry or its tombstone. A box reads only what these schemas accept and rejects the rest
 * with the codes of the stays (E_LOT_*), counted and logged, without touching its store.
 */

/** The kinds on the wire, and the store's list each one is. */
export const listKinds = { blacklist: "blacklist", vehicles: "vehicles", "car-groups": "carGroups" } as const satisfies Record<string, ListName>;
export type ListKind = keyof typeof listKinds;

export function kindOfList(list: ListName): ListKind {
  return list === "carGroups" ? "car-groups" : list;
}

/** An entry's key in its list (the platform's uuid of it). */
const keySchema = z
  .string()
  .min(1)
  .max(64)
  // The store keeps a list as a plain object, where "__proto__" is not an own key.
  .refine((key) => key !== "__proto__", "not a key the store can keep");

const versionFields = {
  v: z.literal(LOT_PAYLOAD_VERSION),
  key: keySchema,
  /** A tombstone: the entry was removed (then `entry` is absent). */
  deleted: z.boolean(),
  hlc: hlcSchema,
};

export const listPayloadSchema = z
  .discriminatedUnion("kind", [
    z.object({ ...versionFields, kind: z.literal("vehicles"), entry: vehicleSchema.optional() }),
    z.object({ ...versionFields, kind: z.literal("car-groups"), entry: carGroupSchema.optional() }),
    z.object({ ...versionFields, kind: z.literal("blacklist"), entry: blacklistEntrySchema.optional() }),
  ])
  .superRefine((payload, ctx) => {
    if (payload.deleted !== (payload.entry === undefined)) {
      ctx.addIssue({ code: "custom", path: ["entry"], message: payload.deleted ? "a tombstone carries no entry" : "an entry version carries its entry" });
    } else if (payload.entry !== undefined && entryKey(payload) !== payload.key) {
      ctx.addIssue({ code: "custom", path: ["key"], message: `the entry's key is ${entryKey(payload)}` });
    }
  });
export type ListPayload = z.infer<typeof listPayloadSchema>;

/** The key the entry itself carries (uuId, carGroupUuid or uuid by kind). */
function entryKey(payload: ListPayload): string | undefined {
  if (payload.kind === "vehicles") return payload.entry?.uuId;
  if (payload.kind === "car-groups") return payload.entry?.carGroupUuid;
  return payload.entry?.uuid;
}

export interface ListTopics {
  entry(kind: ListKind, key: string): string;
  readonly filter: string;
  /** Whether a topic is under `lists/` (then it is the lists' to read or reject). */
  owns(topic: string): boolean;
  /** The kind and key a topic names, or why it names none. */
  parse(topic: string): { ok: true; kind: ListKind; key: string } | { ok: false; message: string };
}

/** The list topics under a lot's base topic (`<topicRoot>/lot/<parkCode>`). */
export function listTopics(base: string): ListTopics {
  const prefix = `${base}/lists/`;
  return {
    entry: (kind, key) => `${prefix}${kind}/${topicLevel(key)}`,
    filter: `${prefix}+/+`,
    owns: (topic) => topic.startsWith(prefix),
    parse(topic) {
      const levels = topic.slice(prefix.length).split("/");
      if (levels.length !== 2 || !Object.hasOwn(listKinds, levels[0]!)) return { ok: false, message: `${topic} names no list entry` };
      let key: string;
      try {
        key = decodeURIComponent(levels[1]!);
      } catch {
        return { ok: false, message: `${topic}: the key is not percent-encoded as a box writes it` };
      }
      if (key === "") return { ok: false, message: `${topic} names no key` };
      return { ok: true, kind: levels[0] as ListKind, key };
    },
  };
}

/** A `lists/<kind>/<key>` message: its kind and key must be the topic's. */
export function decodeListEntry(payload: Buffer, topicKind: ListKind, topicKey: string): Decoded<ListPayload> {
  const decoded = decode(listPayloadSchema, payload);
  if (!decoded.ok) return decoded;
  const value = decoded.value;
  if (value.kind !== topicKind || value.key !== topicKey) {
    return { ok: false, code: LotPayloadError.TopicMismatch, message: `${value.kind}/${value.key} on the topic of ${topicKind}/${topicKey}` };
  }
  return { ok: true, value };
}
