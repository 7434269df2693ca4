import { DEFAULTS } from '../kernel/defaults'
import { GuanaitongError } from '../kernel/errors'
import { toLogger, type Log } from '../observe/log'
import { countEviction } from '../observe/telemetry'
import { printable } from '../kernel/printable'
import type { ClaimResult, CrossCheck, Logger, NotifyStore, PeekResult, StoreOptions, UnsettledLedger, UnsettledRecord } from '../kernel/types'
import { checkKey, checkOptions, MEMORY_STORE_RULES } from '../kernel/validate'
import { checkLedgerKey, checkLimit, checkTake, checkUnsettledRecord } from './unsettled-record'

/**
 * A key that was claimed at least once and is not done: a live claim, a claim whose lease ran
 * out, or a released key. It keeps the attempt counter until `keepUntil`.
 */
interface Held {
  /** Owner of the latest claim; null once released. */
  owner: string | null
  /** The lease ends here (store-relative ms). */
  leaseUntil: number
  /** Claims of this key so far. */
  attempt: number
  /** The entry (and its attempt counter) is dropped here (store-relative ms). */
  keepUntil: number
  /** What `peek(key, note)` left, returned with every claim until the key is done. */
  note?: string
}

/**
 * A done-marker with the memo `complete` was given, as one flat string `<expiry> <memo>`: an
 * object holding both would cost about 40 bytes more per marker.
 */
type DoneWithMemo = string

/**
 * What the map holds per key. A done-marker without a memo is only its expiry, a number
 * (store-relative ms, so it stays a small integer that V8 keeps unboxed): 1 000 000 done-markers
 * fit in about 70 MB of heap, keys included; the router's markers carry a memo (about 70
 * characters), stored with the expiry in one string: about 2.2 times as much in all (measured: 77
 * and 173 bytes per marker, 200 000 of them). Claims are small objects; there are few at any time.
 */
type Entry = number | DoneWithMemo | Held

/** Expired entries looked at from the oldest end on each call. */
const SWEEP_PER_CALL = 8

/**
 * The default notification store: one process, in memory. Fine for a single instance; use
 * `RedisStore` when several instances receive notifications.
 *
 * - Expiring: a claim lasts `leaseMs`, a done-marker `retentionMs` (default 25 h, Guanaitong
 *   retries for 24 h), a released key's attempt counter `retentionMs` from its last claim, release or extend.
 *   Expired entries count as absent; they are removed when touched and by a small sweep of the
 *   oldest entries on every call. There is no timer, so the store never keeps a process alive.
 * - Bounded: at `maxEntries` keys, claiming a new key evicts the oldest done-marker or free key.
 *   A done-marker evicted before its `retentionMs` is logged (warn) and counted: a retry of its
 *   payment finds no marker and runs the handler again.
 *   A live claim is never evicted, even if every entry is one: the store then goes over
 *   `maxEntries` rather than let a second request run a handler that is still running. Live
 *   claims are bounded by the handlers running at once, and each lasts at most `leaseMs` unless
 *   extended, so this excess is small and short-lived.
 * - Entries are kept in the order they were first claimed (a re-claim after expiry moves the key
 *   to the newest end), so the oldest sits first: that is what both the sweep and the eviction
 *   read. The sweep stops at the first entry that has not expired, so it costs O(1) per call.
 * - An owner keeps its key after its lease ran out as long as no other request claimed it in
 *   between: its `complete`, `release` and `extend` still succeed then. Once another request
 *   took over, they return false and leave the new claim alone.
 * - The unsettled ledger (pays that may have charged the employee and are not settled yet) holds
 *   at most `maxEntries` records too; past that, `watchUnsettled` rejects (the pay route logs the
 *   record) rather than drop one. Records are few: most are settled within seconds.
 */
export class MemoryStore implements NotifyStore, UnsettledLedger, CrossCheck {
  readonly leaseMs: number
  readonly retentionMs: number
  /** The most keys held (live claims excepted, see the class notes). */
  readonly maxEntries: number

  private readonly clock: () => number
  private readonly logger: Log
  /** Times are stored relative to this, so they stay small integers. */
  private readonly base: number
  private readonly entries = new Map<string, Entry>()
  /**
   * The oldest key, read through one live iterator of `entries`. A Map keeps deleted entries as
   * holes until it rehashes, and a fresh iterator skips every hole at the front again: reading
   * the oldest entry that way costs O(holes) per call once evictions or expiries start (tens of
   * µs at 100 000 entries). The live iterator steps over each hole once.
   */
  private oldestKey: string | undefined
  private cursor: Iterator<string> | undefined
  /** Size of the map when the cursor last moved: an idle cursor keeps the tables the map outgrew alive. */
  private cursorSize = 0

  constructor(options: MemoryStoreOptions = {}) {
    checkOptions('MemoryStore', options, MEMORY_STORE_RULES, '{ leaseMs: 60000 }')
    this.leaseMs = options.leaseMs ?? DEFAULTS.leaseMs
    this.retentionMs = options.retentionMs ?? DEFAULTS.retentionMs
    this.maxEntries = options.maxEntries ?? DEFAULTS.maxEntries
    this.clock = options.now ?? Date.now
    this.logger = toLogger(options.logger)
    this.base = this.clock()
  }

  /** Unsettled pays by key; their deadlines are epoch ms (the caller's clock), not store-relative. */
  private readonly unsettled = new Map<string, UnsettledRecord>()

  /** Keys held right now, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size
  }

  async claim(key: string): Promise<ClaimResult> {
    checkKey(key)
    const now = this.now()
    this.sweep(now)
    const entry = this.entries.get(key)
    // A key is watched while the ledger holds its record: both change together, in one process.
    const watched = this.unsettled.has(key)
    let attempt = 1
    let note: string | undefined
    if (entry !== undefined) {
      if (isDone(entry)) {
        if (doneUntil(entry) > now) return typeof entry === 'number' ? { status: 'done', watched } : { status: 'done', memo: memoOf(entry), watched }
      } else if (entry.keepUntil > now) {
        if (entry.owner !== null && entry.leaseUntil > now) return { status: 'busy' }
        attempt = entry.attempt + 1
        note = entry.note
      }
      this.drop(key)
    } else {
      this.makeRoom(now)
    }
    const owner = newOwner()
    const leaseUntil = now + this.leaseMs
    const held: Held = { owner, leaseUntil, attempt, keepUntil: Math.max(leaseUntil, now + this.retentionMs) }
    if (note !== undefined) held.note = note
    this.entries.set(flatten(key), held)
    if (this.entries.size > 2 * this.cursorSize + 64) {
      // The map grew while the cursor stood still: let go of it (and of the old tables it holds).
      this.cursor = undefined
      this.oldestKey = undefined
    }
    return note === undefined ? { status: 'claimed', owner, attempt, watched } : { status: 'claimed', owner, attempt, watched, note }
  }

  async complete(key: string, owner: string, memo?: string): Promise<boolean> {
    const now = this.now()
    this.sweep(now)
    if (!this.owned(key, owner, now)) return false
    const until = now + this.retentionMs
    // Set in place: moving it to the newest end would leave a hole in the map's table per key.
    this.entries.set(key, typeof memo === 'string' ? flatten(`${until} ${memo}`) : until)
    return true
  }

  async peek(key: string, note?: string): Promise<PeekResult> {
    checkKey(key)
    const now = this.now()
    this.sweep(now)
    const watched = this.unsettled.has(key)
    let entry = this.entries.get(key)
    if (entry !== undefined && expired(entry, now)) {
      this.drop(key)
      entry = undefined
    }
    if (entry !== undefined && isDone(entry)) return typeof entry === 'number' ? { status: 'done', watched } : { status: 'done', memo: memoOf(entry), watched }
    if (entry !== undefined && entry.owner !== null && entry.leaseUntil > now) return { status: 'busy', watched }
    if (typeof note === 'string') {
      if (entry === undefined) {
        // A free key with its note: the next claim counts attempt 1 and takes the note along.
        this.makeRoom(now)
        entry = { owner: null, leaseUntil: now, attempt: 0, keepUntil: now + Math.max(this.leaseMs, this.retentionMs) }
        this.entries.set(flatten(key), entry)
      }
      entry.note = note
    }
    return { status: 'open', watched }
  }

  async release(key: string, owner: string): Promise<boolean> {
    const now = this.now()
    this.sweep(now)
    const held = this.owned(key, owner, now)
    if (!held) return false
    held.owner = null
    held.leaseUntil = now
    held.keepUntil = now + Math.max(this.leaseMs, this.retentionMs)
    return true
  }

  async extend(key: string, owner: string): Promise<boolean> {
    const now = this.now()
    this.sweep(now)
    const held = this.owned(key, owner, now)
    if (!held) return false
    held.leaseUntil = now + this.leaseMs
    held.keepUntil = now + Math.max(this.leaseMs, this.retentionMs)
    return true
  }

  async watchUnsettled(record: UnsettledRecord): Promise<void> {
    const copy = checkUnsettledRecord('MemoryStore', record)
    if (!this.unsettled.has(copy.key) && this.unsettled.size >= this.maxEntries) {
      throw new GuanaitongError(`MemoryStore: the unsettled ledger is full (${this.maxEntries} records); ${copy.key} was not recorded`,
        'STORE_FULL')
    }
    this.unsettled.set(copy.key, copy)
  }

  async resolveUnsettled(key: string): Promise<void> {
    checkLedgerKey('MemoryStore', key)
    this.unsettled.delete(key)
  }

  async listUnsettled(limit?: number): Promise<UnsettledRecord[]> {
    const most = checkLimit('MemoryStore', limit)
    return this.byDeadline().slice(0, most).map((r) => ({ ...r }))
  }

  async takeDueUnsettled(now: number, limit: number, leaseMs: number): Promise<UnsettledRecord[]> {
    const most = checkLimit('MemoryStore', limit)
    checkTake('MemoryStore', now, leaseMs)
    const due: UnsettledRecord[] = []
    for (const record of this.byDeadline()) {
      if (record.deadline > now || due.length === most) break
      due.push({ ...record })
      record.deadline = now + leaseMs
    }
    return due
  }

  /** Every record, soonest deadline first, ties by key (as a sorted set orders them). A sort per call: records are few. */
  private byDeadline(): UnsettledRecord[] {
    return [...this.unsettled.values()].sort((a, b) => a.deadline - b.deadline || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** The entry of `key` when `owner` made its latest claim and nobody released or completed it. */
  private owned(key: string, owner: string, now: number): Held | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined || isDone(entry)) return undefined
    if (entry.keepUntil <= now) {
      this.drop(key)
      return undefined
    }
    return typeof owner === 'string' && entry.owner === owner ? entry : undefined
  }

  private now(): number {
    return this.clock() - this.base
  }

  /** Every removal goes through here, so `oldestKey` is always present and still the oldest. */
  private drop(key: string): void {
    this.entries.delete(key)
    if (key === this.oldestKey) this.oldestKey = undefined
  }

  /** The key at the oldest end, or undefined when the map is empty. */
  private oldest(): string | undefined {
    if (this.oldestKey !== undefined) return this.oldestKey
    let next = this.cursor?.next()
    // An iterator that reached the end stays done, even after new keys: only then start a new one.
    if (!next || next.done) next = (this.cursor = this.entries.keys()).next()
    this.cursorSize = this.entries.size
    this.oldestKey = next.done ? undefined : next.value
    return this.oldestKey
  }

  /** Drops expired entries from the oldest end, a few per call. */
  private sweep(now: number): void {
    for (let budget = SWEEP_PER_CALL; budget > 0; budget--) {
      const key = this.oldest()
      if (key === undefined || !expired(this.entries.get(key)!, now)) return
      this.drop(key)
    }
  }

  /**
   * Before a new key goes in: at the bound, evict the oldest entries that are not live claims,
   * until there is room again (several when the store went over the bound earlier).
   */
  private makeRoom(now: number): void {
    if (this.entries.size < this.maxEntries) return
    // Live claims passed over are taken out meanwhile (and counted), then put back at the newest
    // end, so the next eviction does not scan them again. When only live claims are left, the new
    // key goes in over the bound.
    const live: [string, Held][] = []
    while (this.entries.size + live.length >= this.maxEntries) {
      const key = this.oldest()
      if (key === undefined) break
      const entry = this.entries.get(key)!
      if (!isDone(entry) && entry.owner !== null && entry.leaseUntil > now && entry.keepUntil > now) {
        live.push([key, entry])
      } else if (isDone(entry) && doneUntil(entry) > now) {
        this.evicted(key, doneUntil(entry), now)
      }
      this.drop(key)
    }
    for (const [key, held] of live) this.entries.set(key, held)
  }

  /** A done-marker dropped before its time: the payment's next retry would run its handler again. */
  private evicted(key: string, expiresAt: number, now: number): void {
    countEviction()
    const settledSec = Math.floor((now - (expiresAt - this.retentionMs)) / 1000)
    this.logger.warn({
      reason: 'DONE_MARKER_EVICTED', key,
    }, `[express-guanaitong] MemoryStore is full (maxEntries ${this.maxEntries}): evicted the done-marker of ` +
      `${printable(key, 200)}, settled ${settledSec} s ago, before its retentionMs (${Math.round(this.retentionMs / 1000)} s); ` +
      'a retry of that payment would run its handler again. Raise maxEntries, or use RedisStore or a SQL store')
  }
}

function isDone(entry: Entry): entry is number | DoneWithMemo {
  return typeof entry !== 'object'
}

function doneUntil(entry: number | DoneWithMemo): number {
  return typeof entry === 'number' ? entry : parseInt(entry, 10)
}

function memoOf(entry: DoneWithMemo): string {
  return entry.slice(entry.indexOf(' ') + 1)
}

function expired(entry: Entry, now: number): boolean {
  return isDone(entry) ? doneUntil(entry) <= now : entry.keepUntil <= now
}

function newOwner(): string {
  return globalThis.crypto.randomUUID()
}

/**
 * A key built by concatenation is a tree of string pieces in V8 (about 100 bytes for a
 * 30-character key); a JSON round trip makes a flat copy (about 50 bytes), exactly equal for
 * any string, lone surrogates included. Done once per claimed key.
 */
function flatten(key: string): string {
  return JSON.parse(JSON.stringify(key)) as string
}

/** Options of `new MemoryStore()`. */
export interface MemoryStoreOptions extends StoreOptions {
  /**
   * The most keys held; when full, a new key evicts the oldest done-marker (or released key), even
   * one younger than `retentionMs`: a retry of that payment then runs the handler again. Each such
   * eviction is logged as a warning and counted (`guanaitong.store.evictions`). Default 100 000.
   */
  maxEntries?: number
  /** Where the eviction warnings go; the router passes its own `logger` to the store it creates. Default: the console. */
  logger?: Logger
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number
}
