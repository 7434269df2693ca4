/**
 * The contracts of the stores: what the settlement core (src/core/settle) asks of a store, and the
 * token cache the client (src/client) uses. The stores of src/stores implement them; a shop's own
 * store can too. Here because core, stores and client are siblings: none may import another.
 */
import type { RejectReason } from './errors'

/**
 * Whether a key has an unsettled-ledger record to remove once it settles (issue 20: the ledger
 * costs nothing for an order it does not hold). `true`: `watchUnsettled` marked the key and no
 * `resolveUnsettled` cleared the mark since; `false`: the store keeps marks and this key has
 * none; absent: the store keeps no marks, and the core removes the order from the ledger anyway.
 */
export interface WatchedFlag {
  watched?: boolean
}

/** The outcome of claiming a notification key in a store. */
export type ClaimResult =
  /**
   * The caller now owns the key for `leaseMs`; `attempt` counts claims of this key so far (1 for
   * the first). `note`: what `peek(key, note)` left on the key before this claim, if anything.
   */
  | ({ status: 'claimed'; owner: string; attempt: number; note?: string } & WatchedFlag)
  /** A handler already finished for this key: answer success without running it again. `memo`: what `complete` stored with it. */
  | ({ status: 'done'; memo?: string } & WatchedFlag)
  /** Another request owns the key right now: answer fail, Guanaitong retries later. */
  | { status: 'busy' }

/**
 * Where a key stands, as `peek` reads it without claiming it: `done` (with the done-marker's
 * `memo`), `busy` (a live claim or an open transaction holds it) or `open` (anything else).
 */
export type PeekResult = { status: 'done' | 'busy' | 'open'; memo?: string } & WatchedFlag

/**
 * The cross-check between the two channels (issue 21 item 4), optional for a store: the core
 * writes a `memo` with each done-marker (what settled: outcome, trade number, amount, buyer) and
 * compares it with every duplicate; it reads the paid key with `peek` before a failure notice
 * settles, leaving a `note` there for a payment that comes later. Memos and notes are printable
 * ASCII (0x20–0x7e), at most 1 024 characters (`MEMO_MAX_LENGTH`, src/core/settle/memo.ts); a store keeps them exactly.
 */
export interface CrossCheck {
  /**
   * Where `key` stands, counting no attempt and taking no lease. When it is `open` and `note` is
   * given, keeps `note` on the key (replacing an earlier note) for at least `retentionMs`: every
   * later claim answered `claimed` (or `settle` answered `completed`) returns it. A `done` or
   * `busy` key gets no note. Atomic with respect to claims of the key: a claim comes wholly
   * before it (the peek sees `busy` or `done`) or wholly after it (the claim gets the note).
   */
  peek(key: string, note?: string): Promise<PeekResult>
}

/**
 * Where notifications are de-duplicated. A key is claimed before the handler runs,
 * completed after it resolved, released if it threw. Implementations must make `claim`
 * atomic and `complete`/`release`/`extend` act only for the current owner.
 * Run `storeConformance()` from `express-guanaitong/testing` against yours.
 */
export interface NotifyStore {
  /** Claims `key` for `leaseMs` unless it is done or validly claimed by someone else. */
  claim(key: string): Promise<ClaimResult>
  /**
   * Marks `key` done and keeps the marker `retentionMs`; false when `owner` no longer owns it.
   * A store that keeps memos stores `memo` with the marker: `claim` answers `done` with it.
   */
  complete(key: string, owner: string, memo?: string): Promise<boolean>
  /** Frees `key` so a later attempt can claim it; false when `owner` no longer owns it. */
  release(key: string, owner: string): Promise<boolean>
  /** Renews the lease of a running handler; false when `owner` no longer owns it. Optional. */
  extend?(key: string, owner: string): Promise<boolean>
  /** How long a claim lasts without `extend`, in ms. */
  readonly leaseMs: number
  /** How long a done-marker is kept, in ms. */
  readonly retentionMs: number
  /** Optional, see `CrossCheck`. */
  peek?: CrossCheck['peek']
}

/** What a transactional store's `settle` found or did. */
export interface TransactionalResult extends WatchedFlag {
  /** `done`: settled before, the work did not run; `busy`: another caller holds the key right now; `completed`: the work ran and committed with the done-marker. */
  status: 'done' | 'busy' | 'completed'
  /** With `done`: the memo stored with the done-marker, if any. */
  memo?: string
  /** With `completed`: the note `peek(key, note)` left on the key before this settlement, if any. */
  note?: string
}

/**
 * A store that commits the done-marker in the same database transaction as the shop's own writes
 * (`PostgresStore`, `MysqlStore`), so a payment's effects happen exactly once.
 */
export interface TransactionalStore<Tx = unknown> {
  /** Tells the settlement core to call `settle` instead of claim/complete/release. */
  readonly transactional: true
  /** How long a done-marker is kept, in ms. */
  readonly retentionMs: number
  /**
   * Settles `key` exactly once: `done` without calling `work` when it was settled before; `busy`
   * at once, never waiting, when another transaction holds it; otherwise BEGIN, `work(tx, attempt)`,
   * done-marker, COMMIT, and `completed` only after the COMMIT succeeded. Rejects with `work`'s own
   * error after a ROLLBACK when `work` rejects, and with a `GuanaitongError` when the database fails.
   * A store that keeps memos commits `memo` with the done-marker (`done` answers return it).
   * `watched` (see `WatchedFlag`) comes with `done` and `completed`.
   */
  settle(key: string, work: (tx: Tx, attempt: number) => Promise<void>, memo?: string): Promise<TransactionalResult>
  /**
   * Where `key` stands, changing nothing: `done`, `busy` (a transaction holds it now) or `open`.
   * Optional: without it, the unsettled sweep asks `settle` with work that throws, which a store
   * may count as an attempt.
   */
  status?(key: string): Promise<'done' | 'busy' | 'open'>
  /** Optional, see `CrossCheck`. `busy`: a transaction holds the key now. */
  peek?: CrossCheck['peek']
}

/** Why a pay is watched in the unsettled ledger. */
export type UnsettledReason =
  /** The pay may have reached Guanaitong but no answer said what became of it (`GatError.ambiguous`: a time-out, a cut connection). */
  | 'AMBIGUOUS'
  /** The pay was answered with a trade number and the pay route does not settle from its answer (`settleOnPay: false`, or no `onPaid`): only the notification will. */
  | 'AWAITING_NOTIFICATION'
  /** The pay was answered with a trade number but settling from the answer failed (`settled: false`), for this reason. */
  | RejectReason

/**
 * A pay that may have charged the employee and that no settlement has confirmed yet. It is
 * removed when the order is settled (its payment or a failure notice, from either channel),
 * and handed to `onUnsettled` once still open at `deadline`.
 */
export interface UnsettledRecord {
  /** The order's payment settlement key (`notificationKey` with a trade number): `<appid>:paid:<outer_trade_no>`. One record per order. */
  key: string
  /** The application the pay was sent for. */
  appId: string
  /** The shop's order number, as sent in the pay. */
  outerTradeNo: string
  /** `total_amount` as sent, normalized to two decimals, e.g. "19.90". */
  totalAmount: string
  /** `total_amount` in integer fen, e.g. 1990. */
  totalFen: number
  /** The employee the pay was sent for. */
  buyerOpenId: string
  /** Guanaitong's trade number from the pay answer; null when no answer was read (`AMBIGUOUS`). */
  tradeNo: string | null
  /** Why it is watched. */
  reason: UnsettledReason
  /** When the pay was answered (or gave up), epoch ms. */
  since: number
  /** When it is reported if still unsettled, epoch ms. A sweep that took it and could not report it moves this on. */
  deadline: number
}

/**
 * The unsettled-pay ledger, kept by stores that implement it (all of this package's):
 * records ordered by deadline. The pay route writes them, the settlement core removes them, a
 * sweep reports the ones that came due. `storeConformance()` and `transactionalStoreConformance()` check it.
 *
 * `PostgresStore` and `MysqlStore` keep it in `<table>_unsettled` (src/stores/sql/dialect.ts).
 */
export interface UnsettledLedger {
  /**
   * Adds the record, or replaces the one with the same `key`. A store that keeps marks (see
   * `WatchedFlag`) also marks the settlement key `record.key`, before the record is written and
   * for at least as long as the record may be reported (past its deadline, and at least
   * `retentionMs`); a mark changes nothing about claiming or settling the key.
   */
  watchUnsettled(record: UnsettledRecord): Promise<void>
  /** Removes the record with this key, and its mark first; nothing happens when there is none. */
  resolveUnsettled(key: string): Promise<void>
  /** Up to `limit` records (default 1 000), soonest deadline first (ties by key). Changes nothing. */
  listUnsettled(limit?: number): Promise<UnsettledRecord[]>
  /**
   * Atomically takes up to `limit` records whose deadline is at or before `now`, soonest first,
   * and moves each one's deadline to `now + leaseMs`, so no other sweep (on any instance) takes
   * it before then. Returns them with the deadline they had. A record is removed only by
   * `resolveUnsettled`, once reported: a sweep that dies meanwhile loses nothing.
   */
  takeDueUnsettled(now: number, limit: number, leaseMs: number): Promise<UnsettledRecord[]>
}

/** Any store the router settles through. */
export type SettleStore<Tx = unknown> = NotifyStore | TransactionalStore<Tx>

/** Options common to the stores. */
export interface StoreOptions {
  /** How long a claim lasts before another request may take over, in ms. Default 60 000. */
  leaseMs?: number
  /** How long a done-marker is kept, in ms. Default 25 h: Guanaitong retries for 24 h. */
  retentionMs?: number
}

/** A cached access token. */
export interface CachedToken {
  /** The access_token value. */
  token: string
  /** When it stops being valid, epoch ms. */
  expiresAt: number
  /** When it should be refreshed (80 % of its lifetime), epoch ms. */
  refreshAt: number
}

/**
 * Where the client keeps its access token. The default holds it in memory;
 * `RedisTokenCache` shares one token across instances.
 */
export interface TokenCache {
  /** The current token, or null. */
  get(): Promise<CachedToken | null>
  /** Stores a token. */
  set(token: CachedToken): Promise<void>
  /** Drops the token, only if it is still `token` (another instance may have replaced it). */
  invalidate(token: string): Promise<void>
  /**
   * Runs `fetch` so that only one caller (in this process, or across the fleet for a shared
   * cache) creates a token at a time; the others wait for its result. Optional: without it,
   * the client de-duplicates in this process only.
   */
  refresh?(fetch: () => Promise<CachedToken>): Promise<CachedToken>
}
