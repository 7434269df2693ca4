/**
 * A fake Guanaitong open platform for tests and local development: `POST /token/create`,
 * `POST /platformDealer/employee/pay`, and the pay notification with retries.
 *
 * It follows what is known of the real platform (docs/gat-protocol.md, the seed page). Where the
 * real platform's behaviour is not known, the sandbox makes its own choice and says so:
 * - error codes for a bad sign, a bad timestamp or a bad parameter: `SANDBOX_CODES`;
 * - the retry schedule of notifications: `DEFAULT_RETRY_SCHEDULE`;
 * - a notification counts as acknowledged when the body read is exactly `success` (sandbox/deliveries.ts);
 * - issuing a new token leaves the older ones valid until they expire.
 *
 * Dependency-free: node:http for the server, the global `fetch` for notifications.
 *
 * This file is the public face; the work is done in ./sandbox/: options.ts (defaults, checks),
 * http.ts (requests and answers), tokens.ts, payments.ts, deliveries.ts (the retry loop),
 * faults.ts, waiters.ts.
 */
import { EventEmitter } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConfigError, GuanaitongError, OUTER_TRADE_NO_EXISTS_CODE, ParamError } from '../../kernel/errors'
import { normalizeAmount } from '../../kernel/money'
import type { Fields, SignAlgorithm } from '../../kernel/types'
import { checkPayParams, Refusal, SANDBOX_CODES } from './form'
import { Deliveries } from './deliveries'
import { Faults } from './faults'
import { handleRequest, type RequestContext } from './http'
import { resolveOptions, type SandboxConfig, type SandboxOptions } from './options'
import { notificationFields, PaymentBook } from './payments'
import { checkPublicParams } from './public-params'
import { TokenRegistry } from './tokens'
import {
  NOTIFICATION_MODES,
  type NotificationMode,
} from './types'
import type {
  AnswerDataOptions,
  BreakOptions,
  DeliveryState,
  FaultOptions,
  PaymentState,
  PayOutcome,
  RefuseOptions,
  Respond5xxOptions,
  RespondWithOptions,
  SandboxDelivery,
  SandboxEvents,
  SandboxPayment,
  SandboxStats,
  SendNotificationInput,
} from './types'
import { Waiters } from './waiters'
import type { FieldsInput } from '../sign-notification'

export { SANDBOX_CODES, type SandboxCode } from './form'
export { DEFAULT_RETRY_SCHEDULE, MAX_NOTIFY_ATTEMPTS, type SandboxOptions } from './options'
export { PAY_PATH, TOKEN_PATH } from './http'
export { NOTIFICATION_MODES } from './types'
export type {
  AnswerDataOptions,
  BreakOptions,
  DeliveryState,
  FaultKind,
  NotificationMode,
  FaultOptions,
  PaymentState,
  PayOutcome,
  RefuseOptions,
  Respond5xxOptions,
  RespondWithOptions,
  SandboxAttempt,
  SandboxDelivery,
  SandboxEvents,
  SandboxPayment,
  SandboxRequestEvent,
  SandboxStats,
  SendNotificationInput,
} from './types'

/**
 * The fake platform. Create with `createSandbox()`, `await start()`, point the client at `url`,
 * `await close()` (or `await using sandbox = ...`).
 */
export class Sandbox extends EventEmitter<SandboxEvents> {
  readonly appId: string
  readonly appSecret: string
  readonly signType: SignAlgorithm
  readonly host: string
  readonly tokenTtlSec: number
  readonly toleranceSec: number
  readonly timeScale: number
  readonly retrySchedule: readonly number[]
  readonly notifyTimeoutMs: number
  private readonly config: SandboxConfig

  private server: Server | null = null
  private started = false
  private closed = false
  private closing: Promise<void> | null = null
  // One object shared with the pieces that count: http.ts (calls) and deliveries.ts (attempts).
  private readonly counters: SandboxStats = {
    requests: 0,
    tokenCalls: 0,
    tokensIssued: 0,
    payCalls: 0,
    paymentsCreated: 0,
    notifyAttempts: 0,
  }
  private readonly tokens: TokenRegistry
  private readonly book: PaymentBook
  private readonly notifications: Deliveries
  private readonly waiters: Waiters
  private readonly faults = new Faults()
  private notificationMode: NotificationMode = 'after-answer'
  private deliveryTarget: string | null = null

  constructor(options: SandboxOptions = {}) {
    super()
    const config = resolveOptions(options)
    this.config = config
    this.appId = config.appId
    this.appSecret = config.appSecret
    this.signType = config.signType
    this.host = config.host
    this.tokenTtlSec = config.tokenTtlSec
    this.toleranceSec = config.toleranceSec
    this.timeScale = config.timeScale
    this.retrySchedule = config.retrySchedule
    this.notifyTimeoutMs = config.notifyTimeoutMs
    this.tokens = new TokenRegistry(config.now)
    this.book = new PaymentBook(config.now)
    this.notifications = new Deliveries(config, this.counters, (event, ...args) => this.emitSafe(event, ...args), () => this.waiters.poke())
    this.waiters = new Waiters(this.book, this.notifications, () => this.closed)
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts listening. Rejects when the port is taken or the sandbox was started before. */
  async start(): Promise<void> {
    if (this.started || this.closed) throw new GuanaitongError('sandbox: start() may be called once, before close()', 'SANDBOX_STATE')
    this.started = true
    const context: RequestContext = {
      counters: this.counters,
      takeFault: (path) => this.faults.take(path),
      createToken: (params) => this.createToken(params),
      pay: (params) => this.pay(params),
      answered: (event) => this.emitSafe('request', event),
    }
    const server = createServer((req, res) => {
      handleRequest(context, req, res).catch(() => {
        if (!res.headersSent) res.destroy()
      })
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      server.once('error', onError)
      server.listen(this.config.port, this.host, () => {
        server.off('error', onError)
        resolve()
      })
    })
  }

  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). Only after `start()`. */
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined
    if (!address || typeof address !== 'object') throw new GuanaitongError('sandbox: url is known once start() resolved', 'SANDBOX_STATE')
    const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address
    return `http://${host}:${address.port}`
  }

  /** The port listened on (after `start()`). */
  get port(): number {
    return Number(new URL(this.url).port)
  }

  /**
   * Stops everything: pending retries are cancelled (state 'cancelled'), notifications in flight
   * aborted, hung requests and keep-alive sockets closed, waiters settled. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose()
    return this.closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private async doClose(): Promise<void> {
    this.closed = true
    await this.notifications.close()
    // Waiters whose condition the last attempts met resolve; the others can only fail now.
    this.waiters.poke()
    this.waiters.failAll('sandbox closed while waiting')
    const server = this.server
    if (server) {
      const done = new Promise<void>((resolve) => server.close(() => resolve()))
      // Hung requests and idle keep-alive sockets would hold server.close() open forever.
      server.closeAllConnections()
      await done
    }
  }

  // ---------------------------------------------------------------- records

  /** Payments in the order they were made. */
  get payments(): readonly SandboxPayment[] {
    return this.book.list()
  }

  /** Same as `payments`, as a new array. */
  listPayments(): SandboxPayment[] {
    return this.book.list()
  }

  getPayment(outerTradeNo: string): SandboxPayment | undefined {
    return this.book.get(outerTradeNo)
  }

  /** Every notification delivery (from pay, `sendNotification` and `notify`), oldest first. */
  get deliveries(): readonly SandboxDelivery[] {
    return this.notifications.all()
  }

  /** A snapshot of the counters. */
  get stats(): SandboxStats {
    return { ...this.counters }
  }

  /** Access tokens currently valid. */
  get validTokens(): string[] {
    return this.tokens.valid()
  }

  // ---------------------------------------------------------------- waiting (tests)

  /**
   * Resolves with the payment once it exists and, when `state` is given, has reached it.
   * Rejects when it settles in another final state, at `timeoutMs` (real time, default 10 000),
   * or when the sandbox closes.
   */
  waitForPayment(outerTradeNo: string, state?: PaymentState, timeoutMs = 10_000): Promise<SandboxPayment> {
    return this.waiters.forPayment(outerTradeNo, state, timeoutMs)
  }

  /** `waitForPayment(outerTradeNo, 'acknowledged', timeoutMs)`. */
  waitForAcknowledged(outerTradeNo: string, timeoutMs = 10_000): Promise<SandboxPayment> {
    return this.waitForPayment(outerTradeNo, 'acknowledged', timeoutMs)
  }

  /** Resolves with the delivery once it settled (or reached `state`); rejects as `waitForPayment`. */
  waitForDelivery(delivery: SandboxDelivery | number, state?: DeliveryState, timeoutMs = 10_000): Promise<SandboxDelivery> {
    return this.waiters.forDelivery(typeof delivery === 'number' ? delivery : delivery.id, state, timeoutMs)
  }

  /** Resolves when no delivery is pending (all acknowledged, abandoned or cancelled). */
  waitIdle(timeoutMs = 10_000): Promise<void> {
    return this.waiters.forIdle(timeoutMs)
  }

  // ---------------------------------------------------------------- faults

  /** Every token issued so far stops being valid: the next call with one gets 1000210004. */
  expireTokens(): void {
    this.tokens.revokeAll()
  }

  /** The next `n` pays succeed, but their notification carries an empty `trade_no` (payment failed). */
  failNextPays(n = 1): void {
    this.faults.failNextPays(n)
  }

  /** Every pay with this `asset_open_id` fails from now on, like an asset without balance (its notification has an empty `trade_no`); `clearFaults()` keeps it. */
  failPaysWithAsset(assetOpenId: string): void {
    this.faults.failPaysWithAsset(assetOpenId)
  }

  /** Outcome of pays from now on (after any `failNextPays`). Default 'paid'. */
  setPayOutcome(outcome: PayOutcome): void {
    this.faults.setPayOutcome(outcome)
  }

  /**
   * When a pay's notification goes out: `after-answer` (default), `before-answer` (its first
   * attempt is answered before the pay is: the race between the two channels), or `off` (never,
   * like a notify URL Guanaitong cannot reach; the payment is recorded as 'unnotified').
   */
  setNotifications(mode: NotificationMode): void {
    if (!NOTIFICATION_MODES.includes(mode)) {
      throw new ParamError('setNotifications(mode)', `must be one of ${NOTIFICATION_MODES.join(', ')}; got ${String(mode)}`)
    }
    this.notificationMode = mode
  }

  /** Answers the next matching request(s) with an HTML error page (a gateway's 502 by default). */
  respond5xx(options: Respond5xxOptions = {}): void {
    this.faults.respond5xx(options)
  }

  /**
   * The next matching request(s) never get an answer (until `close()`); with `midAnswer`, they
   * get the headers and half of the body, and then nothing.
   */
  hang(options: BreakOptions = {}): void {
    this.faults.hang(options)
  }

  /**
   * The connection of the next matching request(s) is closed after the request was read, before
   * any answer; with `midAnswer`, after the headers and half of the body.
   */
  reset(options: BreakOptions = {}): void {
    this.faults.reset(options)
  }

  /**
   * The next matching request(s) get a well-formed refusal `{ code, msg, data: null }` (HTTP 200),
   * with the code the test chooses.
   */
  refuse(options: RefuseOptions): void {
    this.faults.refuse(options)
  }

  /**
   * The next matching request(s) get HTTP 200 `{ code: 0, msg: 'OK', data }` with the `data` the
   * test chooses, e.g. a blank or oversized trade number (with `processed: true` the pay is made).
   */
  answerData(options: AnswerDataOptions): void {
    this.faults.answerData(options)
  }

  /** The next matching request(s) get HTTP 200 with a body that is not valid JSON. */
  garble(options: FaultOptions = {}): void {
    this.faults.garble(options)
  }

  /**
   * The next matching request(s) get exactly the answer the test wrote: status, headers, body.
   * For what the other faults do not give: a proxy's HTML page with status 200, a redirect, a
   * success without data, a token whose lifetime is not a number.
   */
  respondWith(options: RespondWithOptions): void {
    this.faults.respondWith(options)
  }

  /** Drops every pending fault and `failNextPays`, and sets the outcome back to 'paid'. */
  clearFaults(): void {
    this.faults.clear()
  }

  // ---------------------------------------------------------------- notifications without pay

  /**
   * Creates a payment record as if paid through the API and delivers its notification with the
   * retry loop. Throws when the outer trade number exists or the amount is invalid.
   */
  sendNotification(input: SendNotificationInput): SandboxPayment {
    this.assertOpen()
    if (input === null || typeof input !== 'object') throw new ParamError('sendNotification(input)', 'needs { notifyUrl, outerTradeNo, totalAmount }')
    if (typeof input.outerTradeNo !== 'string' || input.outerTradeNo === '') throw new ParamError('outerTradeNo', 'is required by sendNotification')
    if (this.book.has(input.outerTradeNo)) throw new ParamError('outerTradeNo', `${input.outerTradeNo} exists already in the sandbox`)
    const amount = normalizeAmount(input.totalAmount)
    if (!amount.ok) throw new ParamError('totalAmount', amount.rule)
    const payment = this.book.add({
      outerTradeNo: input.outerTradeNo,
      tradeNo: input.tradeNo ?? this.book.nextTradeNo(),
      buyerOpenId: input.buyerOpenId ?? 'sandbox-buyer',
      totalAmount: amount.amount,
      totalFen: amount.fen,
      assetType: input.assetType ?? '1',
      assetOpenId: input.assetOpenId ?? 'sandbox-asset',
      reason: input.reason ?? 'sandbox notification',
      attach: input.attach ?? null,
      notifyUrl: input.notifyUrl,
      outcome: input.failed ? 'failed' : 'paid',
      source: 'sendNotification',
      params: {},
    })
    this.deliver(payment)
    return payment
  }

  /**
   * Delivers arbitrary fields to `url` with the retry loop. `appid` is added when missing;
   * `timestamp` and `sign` are computed afresh for each attempt unless given, in which case they
   * are sent as given (to test a stale or wrongly signed notification). No payment is recorded.
   */
  notify(url: string, fields: FieldsInput): SandboxDelivery {
    this.assertOpen()
    const base: Record<string, string | undefined> = { ...fields }
    if (base.appid === undefined) base.appid = this.appId
    return this.notifications.start(url, base, null)
  }

  /**
   * From now on, delivers the notification of each pay to `url` instead of the pay's
   * `notify_url` (still recorded as the payment's `notifyUrl`); `null` goes back to the pay's own.
   * `sendNotification` keeps the URL it is given.
   * For a shop whose router is configured with its public URL, or whose port is known only once
   * it listens. A pay without `notify_url` is still not notified. Deliveries already started keep
   * their target.
   */
  deliverTo(url: string | null): void {
    if (url !== null && !/^https?:\/\/\S+$/.test(String(url))) {
      throw new ConfigError(`sandbox.deliverTo needs an http(s) URL or null; got ${JSON.stringify(url)}`)
    }
    this.deliveryTarget = url
  }

  private assertOpen(): void {
    if (this.closed) throw new GuanaitongError('sandbox is closed', 'SANDBOX_STATE')
  }

  /** Starts the payment's notification to `url`, unless it has nowhere to go ('unnotified'); resolves after its first attempt. */
  private deliver(payment: SandboxPayment, url = payment.notifyUrl): Promise<void> {
    if (payment.notifyUrl === null || url === null) return Promise.resolve()
    return new Promise((resolve) => {
      this.notifications.start(url, notificationFields(payment, this.appId), payment, resolve)
    })
  }

  /** A listener that throws must not break the sandbox; its error is rethrown asynchronously so a test still sees it. */
  private emitSafe<K extends keyof SandboxEvents>(event: K, ...args: SandboxEvents[K]): void {
    try {
      ;(this.emit as (event: string, ...rest: unknown[]) => boolean)(event, ...args)
    } catch (error) {
      process.nextTick(() => {
        throw error
      })
    }
  }

  // ---------------------------------------------------------------- the two APIs (called by sandbox/http.ts)

  private createToken(params: Fields): { access_token: string; expires_in: number } {
    checkPublicParams(params, this.config)
    if (params.grant_type !== 'client_credential') {
      throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `grant_type must be client_credential; got ${JSON.stringify(params.grant_type ?? null)}`)
    }
    const { accessToken, expiresAt } = this.tokens.issue(this.tokenTtlSec)
    this.counters.tokensIssued += 1
    this.emitSafe('token', { accessToken, expiresIn: this.tokenTtlSec, expiresAt })
    return { access_token: accessToken, expires_in: this.tokenTtlSec }
  }

  /**
   * The answer agrees with the notification (the seed: "与同步返回结果一致"): a paid pay answers its
   * trade number, a failed one answers PAY_FAILED and its notice carries an empty `trade_no`.
   */
  private async pay(params: Fields): Promise<string> {
    checkPublicParams(params, this.config)
    this.tokens.check(params.access_token)
    const checked = checkPayParams(params)
    if (this.book.has(checked.outerTradeNo)) throw new Refusal(OUTER_TRADE_NO_EXISTS_CODE, '外部交易号已存在')
    const outcome = this.faults.nextPayOutcome(checked.assetOpenId)
    const notifyUrl = this.notificationMode === 'off' ? null : checked.notifyUrl
    const payment = this.book.add({ ...checked, notifyUrl, tradeNo: this.book.nextTradeNo(), outcome, source: 'pay', params: { ...params } })
    this.counters.paymentsCreated += 1
    this.emitSafe('pay', { payment })
    const delivered = this.deliver(payment, this.deliveryTarget ?? payment.notifyUrl)
    if (this.notificationMode === 'before-answer') await delivered
    if (outcome === 'failed') throw new Refusal(SANDBOX_CODES.PAY_FAILED, '支付失败 (sandbox: setPayOutcome/failNextPays/failPaysWithAsset)')
    return payment.tradeNo
  }
}

/** A new sandbox; call `start()` on it. */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  return new Sandbox(options)
}
