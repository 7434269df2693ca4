/**
 * The options of `createGuanaitong()` (src/guanaitong.ts checks and defaults them) and the parts each
 * route, the settlement core and the standalone middlewares take. Here, below the core, because
 * the core takes its part of them.
 */
import type { AppSecret, SignAlgorithm } from './signature'
import type { Mismatch, OrderSummary, PayFailedNotice, Payment, RetryBudgetInfo, SettleContext } from './notification'
import type { GatClient, PayParams, PayRequestFields } from './client'
import type { SettleStore, TokenCache, UnsettledRecord } from './store'
import type { Logger } from './logger'

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
