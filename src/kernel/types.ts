
/** Hash used for signatures. Guanaitong's default is sha1; an application can be switched to the others. */
export type SignAlgorithm = 'sha1' | 'sha256' | 'sha512'

/** A flat map of form fields, every value a string. */
export type Fields = Record<string, string>

/**
 * The app secret. A list during a rotation: requests are signed with the first,
 * notifications verified against any.
 */
export type AppSecret = string | readonly string[]

/** The fields of a log line, e.g. `{ outerTradeNo: '1000000005', reason: 'BAD_SIGN' }`. */
export type LogFields = Record<string, unknown>

/**
 * Where log lines go: a pino or bunyan logger, or anything called `(fields, message)` the same way.
 * `console` works too (it is called `(message, fields)`). A logger with `child` is used through
 * `child({ name: 'express-guanaitong' })`.
 */
export interface Logger {
  /** Detail: duplicates acknowledged without running the handler, tokens created. */
  debug?(fields: LogFields, message: string): void
  /** Routine events. */
  info?(fields: LogFields, message: string): void
  /** A bad request, or something that recovered on its own. */
  warn(fields: LogFields, message: string): void
  /** A problem on the shop's side: the store, the handler, a lost lease. */
  error(fields: LogFields, message: string): void
  /** A logger whose lines carry `bindings` as fields. */
  child?(bindings: LogFields): Logger
}

/** Why a notification was answered `fail`. */
export type RejectReason =
  /** Body could not be read as a flat form: bad percent-escape, empty, cut off, bad charset. */
  | 'BAD_BODY'
  /** Body larger than `bodyLimit`. */
  | 'BODY_TOO_LARGE'
  /** The whole body did not arrive within `bodyTimeoutMs` (a client sending it slowly). */
  | 'BODY_TIMEOUT'
  /** Content type other than application/x-www-form-urlencoded, or a method other than POST. */
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** A key appeared twice (`a=1&a=2`). */
  | 'DUPLICATE_KEY'
  /** A key like `a[b]` or a value that an earlier body parser turned into an object. */
  | 'NESTED_KEY'
  /** More parameters than `parameterLimit`. */
  | 'TOO_MANY_PARAMETERS'
  /** A required field (appid, outer_trade_no, total_amount, timestamp, sign) is missing or empty. */
  | 'MISSING_FIELD'
  /** The signature does not match under any configured secret. */
  | 'BAD_SIGN'
  /** `timestamp` is not whole seconds (digits only; milliseconds are too long). */
  | 'BAD_TIMESTAMP'
  /** `timestamp` is further than `toleranceSec` from now, either way. */
  | 'STALE_TIMESTAMP'
  /** `appid` is not the configured application. */
  | 'APPID_MISMATCH'
  /** `total_amount` is not a decimal with at most two decimals in range. */
  | 'BAD_AMOUNT'
  /** Another request is processing the same notification right now; Guanaitong will come back. */
  | 'IN_PROGRESS'
  /** The store threw or did not answer in time. */
  | 'STORE_FAILED'
  /** `onPaid`/`onPayFailed` threw or rejected. */
  | 'HANDLER_FAILED'
  /** `onPaid`/`onPayFailed` did not settle within `handlerTimeoutMs`. */
  | 'HANDLER_TIMEOUT'
  /** `findOrder` found no such order, or its amount or buyer differ from the notification. */
  | 'ORDER_MISMATCH'
  /**
   * A key or value holds `&` or `=`. Guanaitong's signed string joins fields with them, so such a
   * notification could be a re-split of another one (a forgery with a genuine sign); this client
   * never sends either raw. Checked before anything else.
   */
  | 'RESERVED_CHARACTER'
  /** A field named `appsecret`: the signing rule puts the secret under that name, so the field itself is never signed. */
  | 'RESERVED_NAME'

/** A verified notification. `tradeNo` is non-empty for a payment, empty for a failure notice. */
export interface Notification {
  /** `appid`: the application the notification is for (always the configured one once verified). */
  appId: string
  /** `outer_trade_no`: the shop's own order number, as sent in the pay call. */
  outerTradeNo: string
  /** `trade_no`: Guanaitong's trade number; empty when the payment failed. */
  tradeNo: string
  /** `buyer_open_id`: the employee who paid. */
  buyerOpenId: string
  /** `total_amount` exactly as received, e.g. "100.00". */
  totalAmount: string
  /** `total_amount` in integer fen (分), e.g. 10000. */
  totalFen: number
  /**
   * `attach` as the shop passed it to `pay()`: the client percent-encodes `%`, `&` and `=` on the
   * way out (src/kernel/fields.ts) and they are decoded here. `raw.attach` is the encoded string, as the
   * notification carried it or (settled from the pay answer) as the client sent it. Empty when none.
   */
  attach: string
  /** `timestamp` of this delivery attempt, Unix seconds. */
  timestamp: number
  /** Every field as received, including `sign`. */
  raw: Readonly<Fields>
}

/** A successful payment: `tradeNo` is non-empty. */
export type Payment = Notification
/** A failed payment: `tradeNo` is empty. */
export type PayFailedNotice = Notification

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

/** Options of `sweepUnsettled()`. */
export interface SweepOptions {
  /** The store the router uses; it must keep the unsettled ledger (every store of this package does). */
  store: SettleStore & UnsettledLedger
  /** Called once per record still unsettled at its deadline. Throw (or take longer than `hookTimeoutMs`) to have it reported again later. */
  onUnsettled: (record: UnsettledRecord) => unknown
  /** Clock in ms. Default `Date.now`. */
  now?: () => number
  /** Most records this sweep takes. Default 100. */
  limit?: number
  /** Where failures are logged. Default `console`. */
  logger?: Logger
  /** Longest `onUnsettled` may take before it counts as failed, ms. Default 30 000. */
  hookTimeoutMs?: number
  /** How much later a record that could not be reported is taken again, ms (after the sweep's own time bound for it). Default 300 000. */
  retryAfterMs?: number
  /** Longest a store call may take, ms. Default 5 000. */
  storeTimeoutMs?: number
}

/** Any store the router settles through. */
export type SettleStore<Tx = unknown> = NotifyStore | TransactionalStore<Tx>

/** The third argument of `onPaid` and `onPayFailed`: which channel settles, and how. */
export interface SettleContext<Tx = unknown> {
  /** `notify`: Guanaitong's notification; `pay`: the synchronous answer to the pay call (`settleOnPay`). */
  source: 'pay' | 'notify'
  /** Attempts of this settlement that reached the handler so far, this one included (1 for the first). */
  attempt: number
  /** The connection inside the store's transaction (a pg `PoolClient`, a mysql2 `PoolConnection`); undefined for other stores. */
  tx?: Tx
}

/** Options common to the stores. */
export interface StoreOptions {
  /** How long a claim lasts before another request may take over, in ms. Default 60 000. */
  leaseMs?: number
  /** How long a done-marker is kept, in ms. Default 25 h: Guanaitong retries for 24 h. */
  retentionMs?: number
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

/** Options of `createClient()`. */
export interface ClientOptions {
  /** Guanaitong application id (`appid`). */
  appId: string
  /** Application secret; the first of a list signs. */
  appSecret: AppSecret
  /** API host. Default the test host `https://openapi.guanaitong.tech`; production is `https://openapi.guanaitong.com`. */
  baseUrl?: string
  /** Signature algorithm configured for the application. Default sha1. */
  signType?: SignAlgorithm
  /** Per-request timeout in ms. Default 10 000. */
  timeoutMs?: number
  /** Where the access token lives. Default: in this process's memory. */
  tokenCache?: TokenCache
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number
  /** Where client events (token refreshes, retries) are logged. */
  logger?: Logger
}

/** Private parameters of `/platformDealer/employee/pay` (seed), plus any extra ones to pass through. */
export interface PayParams {
  /** The employee's open id, ≤ 32 chars. */
  buyer_open_id: string
  /** Why the employee pays, 1–254 chars. */
  reason: string
  /** Amount in yuan: a decimal string in [0.01, 99999999.99], at most 2 decimals, e.g. "100.00". Numbers are refused (binary floats). */
  total_amount: string
  /** The shop's order number, 2–22 chars, unique per application. */
  outer_trade_no: string
  /** "1" points (积分) or "4" quota (额度). */
  asset_type: '1' | '4' | 1 | 4 | string
  /** The asset the employee chose, ≤ 32 chars. */
  asset_open_id: string
  /** Where Guanaitong posts the result, 1–254 chars. */
  notify_url?: string
  /** Returned as is in the notification, 1–100 chars. */
  attach?: string
  /** Parameters the table does not list (the seed's example sends `trade_info`) pass through. */
  [extra: string]: unknown
}

/**
 * What `preparePayment` receives: the pay request's body fields as the browser sent them. Only
 * `outer_trade_no` has been checked (a 2–22 character string, Guanaitong's limit), so the shop can
 * look its order up with it; every other field is whatever the browser sent, hence `unknown`.
 */
export interface PayRequestFields {
  /** The shop's order number named by the browser, checked to be a 2–22 character string. */
  outer_trade_no: string
  /** Any other body field, unchecked. */
  [field: string]: unknown
}

/** The API client returned by `createClient()`. */
export interface GatClient {
  /** The current access token, creating or refreshing it when due. */
  getToken(): Promise<string>
  /**
   * Validates, signs and sends an employee pay; resolves with Guanaitong's trade number. Rejects
   * with a ParamError (nothing sent) or a GatError whose `sent` and `ambiguous` say whether the
   * employee may have been charged. The pay route treats any other rejection as ambiguous.
   */
  pay(params: PayParams): Promise<string>
  /** Signs and sends any other API call with the same token handling; resolves with `data`. */
  request<T = unknown>(path: string, params?: Record<string, unknown>): Promise<T>
}

/**
 * What `findOrder` returns for an order the shop knows. Amounts are compared by value, as
 * database drivers return them: `totalFen: '1250'` (a BIGINT from node-postgres), `1250n`, or
 * `totalAmount: '12.5000'` (NUMERIC(12,4)) all match a notification of 12.50.
 */
export interface OrderSummary {
  /** The order's amount in yuan: a decimal string with any number of decimals, or a number. Give this or `totalFen`. */
  totalAmount?: string | number
  /** The order's amount in fen: a whole number, a string of digits, or a bigint. Used when given. */
  totalFen?: number | string | bigint
  /** The employee who placed the order; compared when given. */
  buyerOpenId?: string
}

/**
 * Options of `guanaitong()` and of every adapter. `Tx` is the store's transaction handle
 * (`ctx.tx`); `Req` is the framework's own request, handed untouched to the callbacks:
 * `express.Request` for the router, `IncomingMessage` for `/node`, the web `Request` for `/fetch`,
 * `FastifyRequest` for `/fastify`, Koa's `Context` for `/koa`.
 */
export interface GuanaitongOptions<Tx = unknown, Req = unknown> {
  /** Guanaitong application id. Notifications for another appid are rejected. */
  appId: string
  /** Application secret, or a list during a rotation (sign with the first, verify with any). */
  appSecret: AppSecret
  /** The public URL of this router's notify route, sent as `notify_url` with each pay. */
  notifyUrl?: string
  /**
   * Runs once per successful payment, from the pay answer or the notification, whichever settles
   * first. Resolve when the order is updated; throw to have the notification retry.
   */
  onPaid: (payment: Payment, req: Req, ctx: SettleContext<Tx>) => unknown
  /** Runs once per failure notice (empty `trade_no`). Without it, failure notices are acknowledged and logged. */
  onPayFailed?: (notice: PayFailedNotice, req: Req, ctx: SettleContext<Tx>) => unknown
  /**
   * Settle the order from the pay answer itself: when Guanaitong answers the pay with a trade
   * number, run `onPaid` at once (same store key as the notification, so once in all). Default true.
   */
  settleOnPay?: boolean
  /**
   * Builds the pay parameters from the request before they are sent: set `buyer_open_id` from the
   * session and `total_amount` from your own order (looked up by `params.outer_trade_no`), never
   * from the body. What it returns is sent (after the client's checks); throw an error with a 4xx
   * `status` to refuse.
   */
  preparePayment?: (req: Req, params: PayRequestFields) => Partial<PayParams> | Promise<Partial<PayParams>>
  /**
   * Body keys the pay route passes on besides the seed's parameters and `trade_info`. Any other
   * key is answered 400 naming it. Names are exact: `NOTIFY_URL` is not `notify_url`. Default none.
   */
  extraPayParams?: readonly string[]
  /**
   * Let the pay route read `application/x-www-form-urlencoded` bodies as well as JSON. Default
   * false: another site can post a form with the buyer's cookies, but not a JSON body (it needs a
   * CORS preflight). Turn it on only behind your own CSRF protection.
   */
  payFormBodies?: boolean
  /** A ready API client; by default one is made from appId, appSecret, baseUrl, signType, timeoutMs. */
  client?: GatClient
  /** API host for the default client. */
  baseUrl?: string
  /** Signature algorithm for outgoing requests. Default sha1. Notifications: see `notifySignTypes`. */
  signType?: SignAlgorithm
  /** Upstream timeout of the default client, ms. Default 10 000. */
  timeoutMs?: number
  /** Token cache of the default client. */
  tokenCache?: TokenCache
  /**
   * Where settlements are de-duplicated. Default a new `MemoryStore`. Use `RedisStore` on several
   * instances, `PostgresStore`/`MysqlStore` for exactly-once in your own database.
   */
  store?: SettleStore<Tx>
  /** Allowed clock difference for `timestamp`, both directions, seconds. Default 300 (Guanaitong's 5 minutes). */
  toleranceSec?: number
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number
  /** Longest a handler may run before the notification is answered `fail`, ms. Default 30 000. */
  handlerTimeoutMs?: number
  /** Longest a store call may take before the notification is answered `fail`, ms. Default 5 000. */
  storeTimeoutMs?: number
  /** Largest notification body, bytes or a string like "64kb". Default 64 kB. */
  bodyLimit?: number | string
  /** Most form parameters in a notification. Default 100. */
  parameterLimit?: number
  /** Longest the notify route waits for a notification's whole body, ms; then it answers `fail` (`BODY_TIMEOUT`). Default 10 000. */
  bodyTimeoutMs?: number
  /**
   * The algorithms a notification's signature may use. Default all three (sha1, sha256, sha512,
   * told apart by length), whatever `signType` is: `signType` is how requests are signed. Pin it
   * (`['sha256']`) to refuse notifications signed another way (`BAD_SIGN`).
   */
  notifySignTypes?: readonly SignAlgorithm[]
  /** Where rejections and handler failures are logged, with a reason code. Default `console`. */
  logger?: Logger
  /** Log the canonical string of each rejected signature, secret masked. Default false. */
  debug?: boolean
  /** Path of the notification route. Default "/notify". */
  notifyPath?: string
  /** Path of the pay route; `false` leaves it out. Default "/pay". */
  payPath?: string | false
  /**
   * Looks up the shop's order for a notification; a missing order or differing amount/buyer never
   * reaches `onPaid`. It runs in the same settlement as `onPaid`: with `PostgresStore`/`MysqlStore`,
   * read through `ctx.tx` (e.g. `SELECT … FOR UPDATE`), not the pool, which a busy pool may not
   * have a connection for while this settlement holds one.
   */
  findOrder?: (outerTradeNo: string, req: Req, ctx: SettleContext<Tx>) => OrderSummary | null | undefined | Promise<OrderSummary | null | undefined>
  /**
   * Called, besides a `logger.error` line, when a payment disagrees with what the shop or the
   * other channel said: `findOrder` disagrees with it (`OrderMismatch`: answered `fail`, `onPaid`
   * does not run), or it disagrees with what settled the order before (`ChannelMismatch`, see its
   * `problem`: a failure notice for a paid order, a payment after a failure notice, a duplicate with
   * another trade number, amount or buyer). Not awaited; a throw is logged.
   */
  onMismatch?: (mismatch: Mismatch, req: Req) => unknown
  /**
   * Called once per payment whose notification was answered `fail` `retryBudgetThreshold` times,
   * before Guanaitong (10 attempts) gives up. Counted two ways, whichever reaches the threshold
   * first: the store's attempt number (attempts that won a claim, shared by the instances on one
   * store; it fires at the attempt numbered exactly the threshold), and this instance's count of
   * `fail` answers, in memory, which also sees STORE_FAILED (the store could not be reached) and
   * IN_PROGRESS. That memory holds 10 000 payments, is one instance's and is lost on a restart.
   * Not counted: notifications refused before they were verified (BAD_SIGN, …).
   * See the README, "What `onRetryBudgetLow` counts".
   */
  onRetryBudgetLow?: (info: RetryBudgetInfo, req: Req) => unknown
  /** Failed attempts after which `onRetryBudgetLow` fires. Default 7 of Guanaitong's 10. */
  retryBudgetThreshold?: number
  /**
   * Called for a pay that may have charged the employee and is still not settled
   * `unsettledAfterMs` later: an ambiguous pay (a time-out) or one answered `settled: false`,
   * with no notification since. Once per record across instances; throw to be called again
   * later. Needs a store with the unsettled ledger (every store of this package keeps one). See
   * docs/unsettled-pays.md.
   */
  onUnsettled?: (record: UnsettledRecord) => unknown
  /** How long a pay may stay unsettled before `onUnsettled`, ms. Default 25 h (Guanaitong retries notifications for 24 h). */
  unsettledAfterMs?: number
  /**
   * How often the router sweeps for unsettled pays that came due, ms, when `onUnsettled` is set.
   * `false`: no timer; call `sweepUnsettled()` from your own scheduler. Default 60 000.
   */
  sweepEveryMs?: number | false
}

/** Passed to `onMismatch`. */
export interface OrderMismatch {
  /** What disagreed. */
  problem: 'unknown-order' | 'amount' | 'buyer'
  /** The verified notification. */
  notification: Notification
  /** The order `findOrder` returned, if any. */
  order: OrderSummary | null
}

/** What settled an order (or what a failure notice said), as the store's memo or note keeps it. */
export interface SettledSummary {
  /** `paid`: a payment with a trade number; `failed`: a failure notice. */
  outcome: 'paid' | 'failed'
  /** Guanaitong's trade number; empty for `failed`. A value over 200 characters is kept as `sha256:<hex>` of it. */
  tradeNo: string
  /** The amount in yuan, two decimals, e.g. "19.90". */
  totalAmount: string
  /** The amount in integer fen, e.g. 1990. */
  totalFen: number
  /** The employee. A value over 200 characters is kept as `sha256:<hex>` of it. */
  buyerOpenId: string
}

/** Passed to `onMismatch` when the two channels (the pay answer, the notifications) disagree about an order. */
export interface ChannelMismatch {
  /**
   * `failed-after-paid`: a failure notice for an order already paid, or being paid: `onPayFailed`
   * does not run, the notice is acknowledged `success`. `paid-after-failed`: a payment for an
   * order a failure notice was received for: `onPaid` still runs (the employee was charged), then
   * this is reported. `differs-from-settled`: a duplicate of a settled payment whose trade number,
   * amount or buyer differ (`fields`): acknowledged `success`, nothing runs.
   */
  problem: 'failed-after-paid' | 'paid-after-failed' | 'differs-from-settled'
  /** What arrived now: the verified notification, or the payment built from the pay answer. */
  notification: Notification
  /** Which channel it came from. */
  source: SettleContext['source']
  /**
   * What the store recorded before: the settled payment, or the failure notice received. Null
   * when that settlement left no memo (a done-marker written before this version, or a store
   * that keeps none).
   */
  settled: SettledSummary | null
  /** The fields that differ between `notification` and `settled` (`outcome` when a payment meets a failure). */
  fields: Array<'outcome' | 'tradeNo' | 'totalAmount' | 'buyerOpenId'>
}

/** What `onMismatch` receives: tell them apart by `problem`. */
export type Mismatch = OrderMismatch | ChannelMismatch

/** Passed to `onRetryBudgetLow`. */
export interface RetryBudgetInfo {
  /** The notification that keeps failing. */
  notification: Notification
  /**
   * Failed attempts counted for this payment, this one included: the store's attempt number, or
   * this instance's count of `fail` answers when that is higher.
   */
  attempt: number
  /** Guanaitong's documented maximum number of attempts. */
  budget: number
  /** Why this attempt failed. */
  reason: RejectReason
}

/** Options of the `parseNotification()` middleware. */
export type ParseOptions = Pick<GuanaitongOptions, 'bodyLimit' | 'parameterLimit' | 'bodyTimeoutMs' | 'logger'>
/** Options of the `verifyNotification()` middleware. */
export type VerifyOptions = Pick<GuanaitongOptions, 'appId' | 'appSecret' | 'toleranceSec' | 'notifySignTypes' | 'now' | 'debug' | 'logger'>
/** Options of the `dedupeNotification()` middleware. */
export type DedupeOptions<Tx = unknown> = Pick<GuanaitongOptions<Tx>, 'store' | 'storeTimeoutMs' | 'logger'>
/** What the settlement core needs: the handlers, their checks, and where it de-duplicates. */
export type SettleOptions<Tx = unknown, Req = unknown> = Pick<
  GuanaitongOptions<Tx, Req>,
  'onPaid' | 'onPayFailed' | 'handlerTimeoutMs' | 'storeTimeoutMs' | 'logger' | 'findOrder' | 'onMismatch' |
  'onRetryBudgetLow' | 'retryBudgetThreshold' | 'store'
>
/** Options of the `handleNotification()` middleware. Its store comes from a `dedupeNotification()` before it. */
export type HandleOptions<Tx = unknown, Req = unknown> = Omit<SettleOptions<Tx, Req>, 'store' | 'storeTimeoutMs'>
/**
 * Options of the `payRoute()` middleware. With `onPaid` (and `settleOnPay` not false) it settles
 * the order from the pay answer; give it the same `store` as the notification route.
 */
export type PayRouteOptions<Tx = unknown, Req = unknown> = Pick<
  GuanaitongOptions<Tx, Req>, 'preparePayment' | 'notifyUrl' | 'logger' | 'extraPayParams' | 'payFormBodies' | 'settleOnPay' | 'now' | 'unsettledAfterMs'
> & Partial<SettleOptions<Tx, Req>> & {
  /** The API client that sends the pay. */
  client: GatClient
  /** The application id, for the settlement key; required with `onPaid`. */
  appId?: string
}

/**
 * A Redis client this package can use: an ioredis `Redis` or `Cluster` (v5), or a node-redis
 * client or cluster (`redis` v4, v5 or v6, connected). Neither library is imported: the store
 * only calls the client's EVALSHA and EVAL (and, with `waitReplicas`, sends WAIT through an
 * ioredis pipeline or node-redis `sendCommand`).
 */
export interface RedisClientLike {
  /** ioredis: `evalsha(sha, numKeys, ...keys, ...args)`. */
  evalsha?: (...args: any[]) => unknown
  /** node-redis: `evalSha(sha, { keys, arguments })`. */
  evalSha?: (...args: any[]) => unknown
  eval?: (...args: any[]) => unknown
}

/** Options of `new RedisStore()`. */
export interface RedisStoreOptions extends StoreOptions {
  /**
   * A ready ioredis client (`new Redis(url)`, or a `Cluster`) or a connected node-redis client
   * (`await createClient({ url }).connect()`). The store does not connect or close it.
   *
   * Make it fail fast: a notification is answered `fail` on a store error and Guanaitong
   * retries, which beats hanging until the router's `storeTimeoutMs`. With ioredis:
   * `new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 1000 })`
   * (`maxRetriesPerRequest: 0` fails faster still). With node-redis:
   * `createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: 1000 } })`.
   */
  client: RedisClientLike
  /** Prefix of every key. Default "gat:". Use one per application when several share a Redis. */
  prefix?: string
  /**
   * Replicas that must acknowledge a done-marker (Redis `WAIT`) before `complete` resolves, so a
   * `success` answered to Guanaitong survives a failover. Default 0: no wait; replication is
   * asynchronous and a primary lost right after `complete` can take the marker with it. When
   * fewer acknowledge within `waitTimeoutMs`, `complete` rejects (`STORE_NOT_REPLICATED`); the
   * router logs it and still answers `success`, because the handler has run.
   * See docs/redis-cluster.md.
   */
  waitReplicas?: number
  /**
   * How long `complete` waits for `waitReplicas`, ms. Default 100. WAIT holds the connection it
   * runs on: while a shard lacks replicas, each `complete` there takes this long and the commands
   * queued behind it on that connection wait too. Keep it small, and below the client's command
   * timeout. Only with `waitReplicas`.
   */
  waitTimeoutMs?: number
}

/** Options of `new RedisTokenCache()`. */
export interface RedisTokenCacheOptions {
  /** A ready ioredis client or a connected node-redis client, as for `RedisStore`. */
  client: RedisClientLike
  /**
   * Prefix of the two keys used (`<prefix>current`, `<prefix>lock`). Default "gat:token:".
   * Use one per application when several share a Redis, e.g. `gat:token:${appId}:`.
   */
  prefix?: string
  /**
   * How long a refresh may hold the fleet-wide lock, ms. Default 10 000. Keep it at least the
   * client's `timeoutMs`: a fetch that outlives the lock lets another instance fetch too.
   */
  lockMs?: number
  /** How long an instance waits for another instance's refresh before failing, ms. Default lockMs + 5 000. */
  waitMs?: number
  /** How often a waiting instance looks for the new token, ms. Default 50. */
  pollMs?: number
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number
}

/** A row as a driver returns it: column name → value. */
export type SqlRow = Record<string, unknown>

/** What one statement returned: its rows (none for an UPDATE or DELETE) and how many rows it changed. */
export interface SqlResult {
  /** The rows a SELECT returned; empty for other statements. */
  rows: SqlRow[]
  /** Rows an INSERT, UPDATE or DELETE changed (node-postgres `rowCount`, mysql2 `affectedRows`); 0 for a SELECT. */
  affected: number
}

/**
 * One open transaction on one connection, as a `SqlDriver` hands it to a SQL store. The store
 * calls `query` any number of times, then exactly one of `commit` or `rollback`; each of those
 * gives the connection back (a connection whose COMMIT or ROLLBACK failed must be destroyed, not
 * reused: it may still hold the transaction's locks).
 */
export interface SqlTransaction<Tx> {
  /** What the shop's handler receives as `ctx.tx`: the transaction it writes through. */
  readonly tx: Tx
  /** Runs one statement in the transaction. Placeholders are `?`, one per value in `params`. */
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>
  /** COMMITs, then gives the connection back. Rejects when the COMMIT did not succeed. */
  commit(): Promise<void>
  /** ROLLBACKs, then gives the connection back. */
  rollback(): Promise<void>
}

/**
 * How a SQL store talks to its database: statements outside a transaction, and transactions on
 * a connection of their own. `PostgresStore` and `MysqlStore` build one from a node-postgres or
 * mysql2 pool; write one to use Knex or another query builder (README, "Other drivers").
 */
export interface SqlDriver<Tx> {
  /** Runs one statement on its own (autocommit), on any connection. Placeholders are `?`. */
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>
  /** Takes a connection and starts a transaction on it. */
  begin(): Promise<SqlTransaction<Tx>>
}

/** The part of a node-postgres `PoolClient` the store uses. */
export interface PgClientLike {
  query(text: string, values?: any[]): Promise<{ rows: any[]; rowCount: number | null; command: string }>
  release(err?: Error | boolean): void
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: 'error', listener: (err: Error) => void): unknown
}

/** The part of a node-postgres `Pool` the store uses: `new Pool({ connectionString })`. */
export interface PgPoolLike<Tx extends PgClientLike> {
  connect(): Promise<Tx>
  query(text: string, values?: any[]): Promise<{ rows: any[]; rowCount: number | null }>
}

/** The part of a mysql2 `PoolConnection` (from `mysql2/promise`) the store uses. */
export interface MysqlConnectionLike {
  query(sql: string, values?: any): Promise<[any, any]>
  beginTransaction(): Promise<void>
  commit(): Promise<void>
  rollback(): Promise<void>
  release(): void
  destroy(): void
  on(event: 'error', listener: (err: Error) => void): unknown
  off(event: 'error', listener: (err: Error) => void): unknown
}

/** The part of a mysql2 promise `Pool` the store uses: `mysql.createPool(url)` from `mysql2/promise`. */
export interface MysqlPoolLike<Tx extends MysqlConnectionLike> {
  getConnection(): Promise<Tx>
  query(sql: string, values?: any): Promise<[any, any]>
}

/** Options common to `PostgresStore` and `MysqlStore`. */
export interface SqlStoreOptions {
  /**
   * The table of settlement markers. Default "gat_settlements". Letters, digits and `_`, with an
   * optional schema (`payments.gat_settlements`). `postgresSchema(table)` / `mysqlSchema(table)` give its DDL.
   */
  table?: string
  /** How long a done-marker is kept, in ms. Default 25 h: Guanaitong retries for 24 h. */
  retentionMs?: number
  /**
   * How often the store deletes markers older than `retentionMs`, ms: at most once per this
   * interval, after a settlement, without delaying it. Default 600 000 (10 minutes); `false` never
   * (call `purge()` from your own scheduler).
   */
  purgeEveryMs?: number | false
  /** Create the table and its index on first use when missing. Default true; `false` if your migrations own it. */
  createTable?: boolean
}

/** Options of `new PostgresStore()`: a node-postgres pool, or a driver of your own. */
export type PostgresStoreOptions<Tx> = SqlStoreOptions & (
  | { /** A node-postgres `Pool`; the store neither creates nor ends it. `ctx.tx` is its `PoolClient`. */ pool: { connect(): Promise<Tx> } & PgPoolLike<PgClientLike>; driver?: never }
  | { /** A driver of your own (Knex, …); `ctx.tx` is its `tx`. */ driver: SqlDriver<Tx>; pool?: never }
)

/** Options of `new MysqlStore()`: a mysql2 promise pool, or a driver of your own. */
export type MysqlStoreOptions<Tx> = SqlStoreOptions & (
  | { /** A `mysql2/promise` pool; the store neither creates nor ends it. `ctx.tx` is its `PoolConnection`. */ pool: { getConnection(): Promise<Tx> } & MysqlPoolLike<MysqlConnectionLike>; driver?: never }
  | { /** A driver of your own (Knex, …); `ctx.tx` is its `tx`. */ driver: SqlDriver<Tx>; pool?: never }
)
