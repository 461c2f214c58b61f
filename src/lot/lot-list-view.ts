import { compareHlc } from "./hlc.js";
import type { ListKind, ListPayload } from "./lot-list-payloads.js";

/*
 * The lists as the broker's retained messages describe them: the newest version of every
 * entry, a tombstone included. Pure: no broker, no store, no clock of its own.
 *
 * Which version of an entry wins (docs/mqtt.md "Lists shared by the lot"): the newest write,
 * by the hybrid logical clock (wall ms, then counter, then deviceId), whether it wrote the
 * entry or removed it — a car blacklisted again after its removal is blacklisted. Two versions
 * with the same clock come from one write of one box and say the same; should they not, a
 * tombstone beats an entry and then the JSON text decides, so the order stays total: every box
 * that received the same versions, in whatever order and however often, holds the same lists.
 */

export function compareListVersions(a: ListPayload, b: ListPayload): number {
  const byClock = compareHlc(a.hlc, b.hlc);
  if (byClock !== 0) return byClock;
  if (a.deleted !== b.deleted) return a.deleted ? 1 : -1;
  const [textA, textB] = [JSON.stringify(a.entry ?? null), JSON.stringify(b.entry ?? null)];
  return textA === textB ? 0 : textA < textB ? -1 : 1;
}

const idOf = (kind: ListKind, key: string): string => `${kind}/${key}`;

export class LotListView {
  private readonly versions = new Map<string, ListPayload>();

  /** Takes a version in; true when it is now the entry's winning version (it changed the view). */
  apply(version: ListPayload): boolean {
    const id = idOf(version.kind, version.key);
    const held = this.versions.get(id);
    if (held && compareListVersions(version, held) <= 0) return false;
    this.versions.set(id, version);
    return true;
  }

  get(kind: ListKind, key: string): ListPayload | undefined {
    return this.versions.get(idOf(kind, key));
  }

  /** Every entry's winning version (tombstones too), by kind then key. */
  all(): ListPayload[] {
    return [...this.versions.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, version]) => version);
  }

  /** Forgets tombstones written before `beforeMs` (their retained messages expire too). */
  forgetDeleted(beforeMs: number): number {
    let forgotten = 0;
    for (const [id, version] of this.versions) {
      if (version.deleted && version.hlc.wallMs < beforeMs) {
        this.versions.delete(id);
        forgotten++;
      }
    }
    return forgotten;
  }
}
