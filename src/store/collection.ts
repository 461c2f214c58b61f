import type { z } from "zod";
import type { DurableDoc, MapKey } from "./durable-doc.js";
import { StoreError, StoreErrorCode } from "./errors.js";

/** A page request as the platform sends it (queryCarPage, blacklist query): 1-based. */
export interface PageRequest {
  page: number;
  /** ≤ 0 means "everything" (the blacklist query rule, docs/protocol.md §4.9). */
  pageSize: number;
}

/** A page in the platform's own field names (docs/protocol.md §4.11), so handlers map 1:1. */
export interface Page<T> {
  currentPage: number;
  totalPages: number;
  totalItems: number;
  itemsPerPage: number;
  items: T[];
}

/** Larger pages are cut to this; the platform handlers clamp lower (100) themselves. */
export const MAX_PAGE_SIZE = 1000;

export function paginate<T>(items: readonly T[], request?: PageRequest): Page<T> {
  if (!request || !(request.pageSize > 0)) return wholePage(items);
  return pageOf(items, Math.max(1, Math.floor(request.page) || 1), Math.min(Math.floor(request.pageSize), MAX_PAGE_SIZE));
}

/** Every item as one page. */
export function wholePage<T>(items: readonly T[]): Page<T> {
  return { currentPage: 1, totalPages: items.length > 0 ? 1 : 0, totalItems: items.length, itemsPerPage: items.length, items: [...items] };
}

/** Page `page` (1-based) of `pageSize` items. */
export function pageOf<T>(items: readonly T[], page: number, pageSize: number): Page<T> {
  const start = (page - 1) * pageSize;
  return {
    currentPage: page,
    totalPages: Math.ceil(items.length / pageSize),
    totalItems: items.length,
    itemsPerPage: pageSize,
    items: items.slice(start, start + pageSize),
  };
}

export interface WriteOptions {
  /** false: batched (may be lost in a crash). Default true: resolves after the durable write. */
  durable?: boolean;
}

/**
 * Generic CRUD over one keyed map inside a lowdb document: the "port" other parts of the
 * runtime adapt onto (platform handlers list/query/add/edit/delete). Reads are synchronous
 * from memory; writes validate first (a bad item changes nothing: E_STORE_INVALID), then
 * mutate and resolve after the durable write (or batch it with `{ durable: false }`).
 */
export class Collection<T, I = T, D extends { version: number; seq?: number } = { version: number }> {
  constructor(
    readonly name: string,
    private readonly doc: DurableDoc<D>,
    private readonly mapKey: MapKey<D>,
    private readonly schema: z.ZodType<T, I>,
    private readonly keyOf: (item: T) => string,
    /** Told of every change: the item before and after (undefined = absent; all undefined after clear). */
    private readonly onChange: (key: string | undefined, before: T | undefined, after: T | undefined) => void = () => undefined,
  ) {}

  private get items(): Readonly<Record<string, T>> {
    return this.doc.data[this.mapKey] as Record<string, T>;
  }

  private setItem(key: string, item: T): void {
    this.doc.set(this.mapKey, key, item as never);
  }

  get(key: string): T | undefined {
    return Object.hasOwn(this.items, key) ? this.items[key] : undefined;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.items, key);
  }

  count(): number {
    return this.doc.size(this.mapKey);
  }

  /** Every item's key, in insertion order. */
  keys(): string[] {
    return Object.keys(this.items);
  }

  /** All items in insertion order. */
  values(): T[] {
    return Object.values(this.items);
  }

  find(predicate: (item: T) => boolean): T | undefined {
    for (const item of Object.values(this.items)) if (predicate(item)) return item;
    return undefined;
  }

  list(filter?: (item: T) => boolean, page?: PageRequest): Page<T> {
    const all = filter ? this.values().filter(filter) : this.values();
    return paginate(all, page);
  }

  /** Validates and parses an item (defaults filled in) without storing it. */
  parse(item: unknown): T {
    const parsed = this.schema.safeParse(item);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
      throw new StoreError(StoreErrorCode.Invalid, `${this.name}: ${issues.join("; ")}`);
    }
    return parsed.data;
  }

  /** Inserts or replaces by key. */
  async put(item: I, options: WriteOptions = {}): Promise<T> {
    const parsed = this.parse(item);
    const key = this.keyOf(parsed);
    const before = this.get(key);
    this.setItem(key, parsed);
    this.onChange(key, before, parsed);
    await this.persist(options);
    return parsed;
  }

  /** Inserts; E_STORE_DUPLICATE when the key exists. */
  async insert(item: I, options: WriteOptions = {}): Promise<T> {
    const parsed = this.parse(item);
    const key = this.keyOf(parsed);
    if (this.has(key)) throw new StoreError(StoreErrorCode.Duplicate, `${this.name}: ${key} already exists`);
    this.setItem(key, parsed);
    this.onChange(key, undefined, parsed);
    await this.persist(options);
    return parsed;
  }

  /** Merges `patch` into the item; the result is validated before anything changes. */
  async patch(key: string, patch: Partial<T>, options: WriteOptions = {}): Promise<T> {
    const current = this.get(key);
    if (current === undefined) throw new StoreError(StoreErrorCode.NotFound, `${this.name}: no ${key}`);
    const parsed = this.parse({ ...current, ...patch });
    if (this.keyOf(parsed) !== key) throw new StoreError(StoreErrorCode.Invalid, `${this.name}: a patch cannot change the key ${key}`);
    this.setItem(key, parsed);
    this.onChange(key, current, parsed);
    await this.persist(options);
    return parsed;
  }

  async delete(key: string, options: WriteOptions = {}): Promise<boolean> {
    const before = this.get(key);
    if (before === undefined) return false;
    this.doc.del(this.mapKey, key);
    this.onChange(key, before, undefined);
    await this.persist(options);
    return true;
  }

  /** Removes every item; returns how many there were. */
  async clear(options: WriteOptions = {}): Promise<number> {
    const keys = Object.keys(this.items);
    for (const key of keys) this.doc.del(this.mapKey, key);
    this.onChange(undefined, undefined, undefined);
    await this.persist(options);
    return keys.length;
  }

  private async persist(options: WriteOptions): Promise<void> {
    if (options.durable === false) this.doc.commitLater();
    else await this.doc.commit();
  }
}
