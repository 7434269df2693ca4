/**
 * A fake Guanaitong open platform for tests and local development: `POST /token/create`,
 * `POST /platformDealer/employee/pay`, and the pay notification with retries.
 *
 * It follows what is known of the real platform (docs/gat-protocol.md, the seed page). Where the
 * real platform's behaviour is not known, the sandbox makes its own choice and says so:
 * - error codes for a bad sign, a bad timestamp or a bad parameter: `SANDBOX_CODES`;
 * - the retry schedule of notifications: `DEFAULT_RETRY_SCHEDULE`;
 * - a notification counts as acknowledged when the body read is exactly `success` (see below);
 * - issuing a new token leaves the older ones valid until they expire.
 *
 * Dependency-free: node:http for the server, the global `fetch` for notifications.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConfigError, OUTER_TRADE_NO_EXISTS_CODE, TOKEN_INVALID_CODE } from '../errors'
import { normalizeAmount } from '../money'
import { SIGN_ALGORITHMS, verifySign } from '../signature'
import type { Fields, SignAlgorithm } from '../types'
import { checkPayParams, mergeParams, parseForm, Refusal, SANDBOX_CODES } from './sandbox-form'
import { encodeForm, signNotification, type FieldsInput } from './sign-notification'

export { SANDBOX_CODES, type SandboxCode } from './sandbox-form'

/**
 * Delays before each notification attempt, in ms: attempt 1 at once, attempt 2 15 s later, then
 * 30 s, 3 min, 10 min, 20 min, 30 min, 1 h, 3 h, 6 h: 10 attempts over about 11 h.
 * THIS IS THE SANDBOX'S CHOICE. Guanaitong only says it retries "at increasing intervals within
 * 24 hours, at most 10 times" and does not publish the intervals. Multiplied by `timeScale`.
 */
export const DEFAULT_RETRY_SCHEDULE: readonly number[] = Object.freeze([
  0, 15_000, 30_000, 180_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000,
])

/** Guanaitong's documented maximum of notification attempts. */
export const MAX_NOTIFY_ATTEMPTS = 10
const DAY_MS = 24 * 3600 * 1000
const BODY_LIMIT = 1024 * 1024
const RECORDED_BODY_LIMIT = 4096

export const TOKEN_PATH = '/token/create'
export const PAY_PATH = '/platformDealer/employee/pay'

/** Options of `createSandbox()`. */
export interface SandboxOptions {
  /** The one application the sandbox knows. Default '20110698' (the seed's example). */
  appId?: string
  /** Its secret. Default 'sandbox-secret'. */
  appSecret?: string
  /** Algorithm the sandbox signs notifications with. Default sha1. Requests are verified whatever their signature length (40/64/128). */
  signType?: SignAlgorithm
  /** Port to listen on. Default 0: an ephemeral port, see `url`. */
  port?: number
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string
  /** Lifetime of an access token, seconds. Default 3600 (Guanaitong's `expires_in`). */
  tokenTtlSec?: number
  /** Allowed difference between a request's `timestamp` and `now`, seconds, both ways. Default 300. */
  toleranceSec?: number
  /** Multiplies the retry schedule: 0.001 turns 6 h into 21.6 s. Default 1. */
  timeScale?: number
  /** Delays before each notification attempt, ms (1 to 10 entries, sum ≤ 24 h). Default `DEFAULT_RETRY_SCHEDULE`. */
  retrySchedule?: readonly number[]
  /** How long the sandbox waits for the shop's answer to a notification, ms (real time). Default 5000. */
  notifyTimeoutMs?: number
  /** Clock in ms, for timestamps and token expiry. Default `Date.now`. */
  now?: () => number
}

export type PayOutcome = 'paid' | 'failed'
/** Where a notification delivery stands. `cancelled`: the sandbox was closed before it settled. */
export type DeliveryState = 'pending' | 'acknowledged' | 'abandoned' | 'cancelled'
/** A payment's notification state; `unnotified` when it had no notify_url. */
export type PaymentState = DeliveryState | 'unnotified'

/** One POST of a notification to the shop. */
export interface SandboxAttempt {
  /** 1 for the first attempt. */
  attempt: number
  /** When it was sent, epoch ms by the sandbox clock (`now`). */
  at: number
  /** The fields as sent, with this attempt's `timestamp` and `sign`. */
  fields: Fields
  /** HTTP status of the answer; null when none arrived. */
  status: number | null
  /** Body of the answer (first 4096 chars); null when none was read. */
  body: string | null
  /** Why no answer was read (connection refused, timeout, ...); null when one was. */
  error: string | null
  /** Real time from sending to the end of the answer, ms. */
  durationMs: number
}

/** A payment the sandbox accepted (through the pay API or `sendNotification`). */
export interface SandboxPayment {
  outerTradeNo: string
  /** The Guanaitong trade number returned by pay. Sent as `trade_no` only when `outcome` is 'paid'. */
  tradeNo: string
  buyerOpenId: string
  /** Normalised two-decimal amount, e.g. "100.00". */
  totalAmount: string
  totalFen: number
  assetType: string
  assetOpenId: string
  reason: string
  attach: string | null
  notifyUrl: string | null
  /** 'failed': the notification carries an empty `trade_no`. */
  outcome: PayOutcome
  state: PaymentState
  /** Notification attempts so far (the same array as its delivery's). */
  attempts: SandboxAttempt[]
  /** Sandbox clock, epoch ms. */
  createdAt: number
  source: 'pay' | 'sendNotification'
  /** Every parameter of the pay request as received (empty for `sendNotification`). */
  params: Fields
}

/** A notification being delivered with the retry loop. */
export interface SandboxDelivery {
  id: number
  url: string
  outerTradeNo: string | null
  state: DeliveryState
  attempts: SandboxAttempt[]
}

/** Counters since start. */
export interface SandboxStats {
  /** Every HTTP request the sandbox received. */
  requests: number
  /** Requests to /token/create, refused or faulted ones included. */
  tokenCalls: number
  /** Tokens issued. */
  tokensIssued: number
  /** Requests to /platformDealer/employee/pay, refused or faulted ones included. */
  payCalls: number
  /** Payments accepted by the pay API. */
  paymentsCreated: number
  /** Notification POSTs made. */
  notifyAttempts: number
}

export type FaultKind = '5xx' | 'hang' | 'garble'

/** Where and how often a fault applies. */
export interface FaultOptions {
  /** Only requests to this path (e.g. '/token/create'); default any path. */
  path?: string
  /** How many requests it affects. Default 1; `Infinity` until `clearFaults()`. */
  times?: number
  /**
   * Process the request first, then spoil the answer: the call takes effect (a payment is made)
   * but the client cannot know it. Default false: the request has no effect.
   */
  processed?: boolean
}

export interface Respond5xxOptions extends FaultOptions {
  /** Status of the HTML error page. Default 502. */
  status?: number
}

/** Emitted after every answered (or hung) request, for logs and a CLI. */
export interface SandboxRequestEvent {
  method: string
  path: string
  /** HTTP status; 0 for a hung request. */
  status: number
  /** JSON `code` of the answer; null for faults and non-JSON answers. */
  code: number | null
  msg: string | null
  traceId: string | null
  fault: FaultKind | null
  durationMs: number
}

export interface SandboxEvents {
  request: [SandboxRequestEvent]
  token: [{ accessToken: string; expiresIn: number; expiresAt: number }]
  pay: [{ payment: SandboxPayment }]
  attempt: [{ delivery: SandboxDelivery; payment: SandboxPayment | null; attempt: SandboxAttempt }]
  acknowledged: [{ delivery: SandboxDelivery; payment: SandboxPayment | null; attempt: SandboxAttempt }]
  abandoned: [{ delivery: SandboxDelivery; payment: SandboxPayment | null }]
}

/** Input of `sendNotification()`: a payment made without the pay API. */
export interface SendNotificationInput {
  /** Where to post. */
  notifyUrl: string
  outerTradeNo: string
  /** Amount in yuan; normalised to two decimals ("100" → "100.00"). */
  totalAmount: string | number
  /** Default 'sandbox-buyer'. */
  buyerOpenId?: string
  attach?: string
  /** Default: a fresh trade number. */
  tradeNo?: string
  /** True: the notification carries an empty `trade_no` (payment failed). */
  failed?: boolean
  assetType?: string
  assetOpenId?: string
  reason?: string
}

interface Fault {
  kind: FaultKind
  path: string | undefined
  remaining: number
  processed: boolean
  status: number
}

interface Answer {
  status: number
  body: { code: number; msg: string; data: unknown }
}

interface Sleep {
  timer: NodeJS.Timeout
  resolve: () => void
}

interface Waiter {
  check: () => boolean
  fail: (error: Error) => void
}

const BAD_GATEWAY_PAGE = (status: number) =>
  `<html>\r\n<head><title>${status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>${status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`

function positive(name: string, value: number, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(`sandbox option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} finite number; got ${String(value)}`)
  }
  return value
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as { cause?: unknown }).cause
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return `${error.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`.trim()
  }
  return error.message
}

/** Yyyymmdd in Guanaitong's time zone (GMT+8). */
function datePart(ms: number): string {
  return new Date(ms + 8 * 3600 * 1000).toISOString().slice(0, 10).replace(/-/g, '')
}

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
  private readonly requestedPort: number
  private readonly now: () => number

  private server: Server | null = null
  private started = false
  private closed = false
  private closing: Promise<void> | null = null
  private readonly tokens = new Map<string, number>()
  private readonly paymentsByNo = new Map<string, SandboxPayment>()
  private readonly deliveryList: SandboxDelivery[] = []
  private readonly running = new Set<Promise<void>>()
  private readonly sleeps = new Set<Sleep>()
  private readonly controllers = new Set<AbortController>()
  private readonly waiters = new Set<Waiter>()
  private readonly hung = new Set<ServerResponse>()
  private faultQueue: Fault[] = []
  private failNext = 0
  private defaultOutcome: PayOutcome = 'paid'
  private tradeSeq = 0
  private deliverySeq = 0
  private readonly counters: SandboxStats = {
    requests: 0,
    tokenCalls: 0,
    tokensIssued: 0,
    payCalls: 0,
    paymentsCreated: 0,
    notifyAttempts: 0,
  }

  constructor(options: SandboxOptions = {}) {
    super()
    this.appId = options.appId ?? '20110698'
    this.appSecret = options.appSecret ?? 'sandbox-secret'
    if (typeof this.appId !== 'string' || this.appId === '') throw new ConfigError('sandbox option appId must be a non-empty string')
    if (typeof this.appSecret !== 'string' || this.appSecret === '') throw new ConfigError('sandbox option appSecret must be a non-empty string')
    this.signType = options.signType ?? 'sha1'
    if (!SIGN_ALGORITHMS.includes(this.signType)) throw new ConfigError(`sandbox option signType must be sha1, sha256 or sha512; got ${String(this.signType)}`)
    this.requestedPort = options.port ?? 0
    if (!Number.isInteger(this.requestedPort) || this.requestedPort < 0 || this.requestedPort > 65535) {
      throw new ConfigError(`sandbox option port must be an integer 0-65535; got ${String(options.port)}`)
    }
    this.host = options.host ?? '127.0.0.1'
    this.tokenTtlSec = positive('tokenTtlSec', options.tokenTtlSec ?? 3600)
    this.toleranceSec = positive('toleranceSec', options.toleranceSec ?? 300, true)
    this.timeScale = positive('timeScale', options.timeScale ?? 1, true)
    this.notifyTimeoutMs = positive('notifyTimeoutMs', options.notifyTimeoutMs ?? 5000)
    const schedule = options.retrySchedule ?? DEFAULT_RETRY_SCHEDULE
    if (!Array.isArray(schedule) || schedule.length < 1 || schedule.length > MAX_NOTIFY_ATTEMPTS) {
      throw new ConfigError(`sandbox option retrySchedule must list 1 to ${MAX_NOTIFY_ATTEMPTS} delays (Guanaitong tries at most ${MAX_NOTIFY_ATTEMPTS} times)`)
    }
    schedule.forEach((delay, i) => positive(`retrySchedule[${i}]`, delay, true))
    if (schedule.reduce((a, b) => a + b, 0) > DAY_MS) {
      throw new ConfigError('sandbox option retrySchedule must fit within 24 h (Guanaitong retries within 24 hours)')
    }
    this.retrySchedule = Object.freeze([...schedule])
    this.now = options.now ?? Date.now
    if (typeof this.now !== 'function') throw new ConfigError('sandbox option now must be a function returning epoch ms')
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts listening. Rejects when the port is taken or the sandbox was started before. */
  async start(): Promise<void> {
    if (this.started || this.closed) throw new Error('[express-guanaitong] sandbox: start() may be called once, before close()')
    this.started = true
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.destroy()
      })
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error)
      server.once('error', onError)
      server.listen(this.requestedPort, this.host, () => {
        server.off('error', onError)
        resolve()
      })
    })
  }

  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). Only after `start()`. */
  get url(): string {
    const address = this.server?.address() as AddressInfo | null | undefined
    if (!address || typeof address !== 'object') throw new Error('[express-guanaitong] sandbox: url is known once start() resolved')
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
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer)
      sleep.resolve()
    }
    this.sleeps.clear()
    for (const controller of this.controllers) controller.abort(new Error('sandbox closed'))
    await Promise.allSettled([...this.running])
    this.poke()
    for (const waiter of [...this.waiters]) waiter.fail(new Error('[express-guanaitong] sandbox closed while waiting'))
    this.waiters.clear()
    const server = this.server
    if (server) {
      const done = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      this.hung.clear()
      await done
    }
  }

  // ---------------------------------------------------------------- records

  /** Payments in the order they were made. */
  get payments(): readonly SandboxPayment[] {
    return [...this.paymentsByNo.values()]
  }

  /** Same as `payments`, as a new array. */
  listPayments(): SandboxPayment[] {
    return [...this.paymentsByNo.values()]
  }

  getPayment(outerTradeNo: string): SandboxPayment | undefined {
    return this.paymentsByNo.get(outerTradeNo)
  }

  /** Every notification delivery (from pay, `sendNotification` and `notify`), oldest first. */
  get deliveries(): readonly SandboxDelivery[] {
    return [...this.deliveryList]
  }

  /** A snapshot of the counters. */
  get stats(): SandboxStats {
    return { ...this.counters }
  }

  /** Access tokens currently valid. */
  get validTokens(): string[] {
    const now = this.now()
    return [...this.tokens].filter(([, expiresAt]) => now < expiresAt).map(([token]) => token)
  }

  // ---------------------------------------------------------------- waiting (tests)

  /**
   * Resolves with the payment once it exists and, when `state` is given, has reached it.
   * Rejects when it settles in another final state, at `timeoutMs` (real time, default 10 000),
   * or when the sandbox closes.
   */
  waitForPayment(outerTradeNo: string, state?: PaymentState, timeoutMs = 10_000): Promise<SandboxPayment> {
    return this.waitFor(`payment ${outerTradeNo}${state ? ` to be ${state}` : ''}`, timeoutMs, () => {
      const payment = this.paymentsByNo.get(outerTradeNo)
      if (!payment) return undefined
      if (state === undefined || payment.state === state) return payment
      if (payment.state !== 'pending') {
        throw new Error(`[express-guanaitong] sandbox: payment ${outerTradeNo} is ${payment.state}, not ${state} (${payment.attempts.length} attempts; last: ${lastAttempt(payment.attempts)})`)
      }
      return undefined
    }, () => {
      const payment = this.paymentsByNo.get(outerTradeNo)
      return payment ? `it is ${payment.state} after ${payment.attempts.length} attempts (last: ${lastAttempt(payment.attempts)})` : 'no such payment'
    })
  }

  /** `waitForPayment(outerTradeNo, 'acknowledged', timeoutMs)`. */
  waitForAcknowledged(outerTradeNo: string, timeoutMs = 10_000): Promise<SandboxPayment> {
    return this.waitForPayment(outerTradeNo, 'acknowledged', timeoutMs)
  }

  /** Resolves with the delivery once it settled (or reached `state`); rejects as `waitForPayment`. */
  waitForDelivery(delivery: SandboxDelivery | number, state?: DeliveryState, timeoutMs = 10_000): Promise<SandboxDelivery> {
    const id = typeof delivery === 'number' ? delivery : delivery.id
    const find = () => this.deliveryList.find((d) => d.id === id)
    return this.waitFor(`delivery ${id}${state ? ` to be ${state}` : ' to settle'}`, timeoutMs, () => {
      const d = find()
      if (!d || d.state === 'pending') return undefined
      if (state === undefined || d.state === state) return d
      throw new Error(`[express-guanaitong] sandbox: delivery ${id} is ${d.state}, not ${state} (last: ${lastAttempt(d.attempts)})`)
    }, () => `it is ${find()?.state ?? 'unknown'}`)
  }

  /** Resolves when no delivery is pending (all acknowledged, abandoned or cancelled). */
  waitIdle(timeoutMs = 10_000): Promise<void> {
    if (this.closed && this.running.size === 0) return Promise.resolve()
    return this.waitFor('all deliveries to settle', timeoutMs, () => (this.running.size === 0 ? true : undefined),
      () => `${this.running.size} still pending`).then(() => undefined)
  }

  private waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined, status: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const waiter: Waiter = {
        check: () => {
          let value: T | undefined
          try {
            value = check()
          } catch (error) {
            waiter.fail(error as Error)
            return true
          }
          if (value === undefined) return false
          this.waiters.delete(waiter)
          clearTimeout(timer)
          resolve(value)
          return true
        },
        fail: (error) => {
          this.waiters.delete(waiter)
          clearTimeout(timer)
          reject(error)
        },
      }
      if (waiter.check()) return
      if (this.closed && this.running.size === 0) {
        waiter.fail(new Error(`[express-guanaitong] sandbox is closed; waiting for ${what}: ${status()}`))
        return
      }
      this.waiters.add(waiter)
      timer = setTimeout(() => {
        waiter.fail(new Error(`[express-guanaitong] sandbox: timed out after ${timeoutMs} ms waiting for ${what}: ${status()}`))
      }, timeoutMs)
    })
  }

  private poke(): void {
    for (const waiter of [...this.waiters]) waiter.check()
  }

  // ---------------------------------------------------------------- faults

  /** Every token issued so far stops being valid: the next call with one gets 1000210004. */
  expireTokens(): void {
    this.tokens.clear()
  }

  /** The next `n` pays succeed, but their notification carries an empty `trade_no` (payment failed). */
  failNextPays(n = 1): void {
    if (!Number.isInteger(n) || n < 0) throw new TypeError('[express-guanaitong] failNextPays(n) needs a non-negative integer')
    this.failNext = n
  }

  /** Outcome of pays from now on (after any `failNextPays`). Default 'paid'. */
  setPayOutcome(outcome: PayOutcome): void {
    if (outcome !== 'paid' && outcome !== 'failed') throw new TypeError("[express-guanaitong] setPayOutcome takes 'paid' or 'failed'")
    this.defaultOutcome = outcome
  }

  /** Answers the next matching request(s) with an HTML error page (a gateway's 502 by default). */
  respond5xx(options: Respond5xxOptions = {}): void {
    const status = options.status ?? 502
    if (!Number.isInteger(status) || status < 500 || status > 599) throw new TypeError('[express-guanaitong] respond5xx status must be 500-599')
    this.addFault('5xx', options, status)
  }

  /** The next matching request(s) never get an answer (until `close()`). */
  hang(options: FaultOptions = {}): void {
    this.addFault('hang', options, 0)
  }

  /** The next matching request(s) get HTTP 200 with a body that is not valid JSON. */
  garble(options: FaultOptions = {}): void {
    this.addFault('garble', options, 200)
  }

  /** Drops every pending fault and `failNextPays`, and sets the outcome back to 'paid'. */
  clearFaults(): void {
    this.faultQueue = []
    this.failNext = 0
    this.defaultOutcome = 'paid'
  }

  private addFault(kind: FaultKind, options: FaultOptions, status: number): void {
    const times = options.times ?? 1
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new TypeError('[express-guanaitong] fault times must be a positive integer or Infinity')
    }
    this.faultQueue.push({ kind, path: options.path, remaining: times, processed: options.processed ?? false, status })
  }

  private takeFault(path: string): Fault | null {
    const fault = this.faultQueue.find((f) => f.path === undefined || f.path === path)
    if (!fault) return null
    fault.remaining -= 1
    if (fault.remaining <= 0) this.faultQueue = this.faultQueue.filter((f) => f !== fault)
    return fault
  }

  // ---------------------------------------------------------------- notifications without pay

  /**
   * Creates a payment record as if paid through the API and delivers its notification with the
   * retry loop. Throws when the outer trade number exists or the amount is invalid.
   */
  sendNotification(input: SendNotificationInput): SandboxPayment {
    this.assertOpen()
    if (typeof input.outerTradeNo !== 'string' || input.outerTradeNo === '') throw new TypeError('[express-guanaitong] sendNotification needs outerTradeNo')
    if (this.paymentsByNo.has(input.outerTradeNo)) throw new Error(`[express-guanaitong] sandbox: payment ${input.outerTradeNo} exists already`)
    const amount = normalizeAmount(input.totalAmount)
    if (!amount.ok) throw new TypeError(`[express-guanaitong] sendNotification: totalAmount ${amount.rule}`)
    const payment: SandboxPayment = {
      outerTradeNo: input.outerTradeNo,
      tradeNo: input.tradeNo ?? this.nextTradeNo(),
      buyerOpenId: input.buyerOpenId ?? 'sandbox-buyer',
      totalAmount: amount.amount,
      totalFen: amount.fen,
      assetType: input.assetType ?? '1',
      assetOpenId: input.assetOpenId ?? 'sandbox-asset',
      reason: input.reason ?? 'sandbox notification',
      attach: input.attach ?? null,
      notifyUrl: input.notifyUrl,
      outcome: input.failed ? 'failed' : 'paid',
      state: 'pending',
      attempts: [],
      createdAt: this.now(),
      source: 'sendNotification',
      params: {},
    }
    this.paymentsByNo.set(payment.outerTradeNo, payment)
    this.startDelivery(input.notifyUrl, this.notificationFields(payment), payment)
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
    return this.startDelivery(url, base, null)
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('[express-guanaitong] sandbox is closed')
  }

  private notificationFields(payment: SandboxPayment): Record<string, string | undefined> {
    return {
      appid: this.appId,
      outer_trade_no: payment.outerTradeNo,
      buyer_open_id: payment.buyerOpenId,
      attach: payment.attach ?? undefined,
      total_amount: payment.totalAmount,
      trade_no: payment.outcome === 'paid' ? payment.tradeNo : '',
    }
  }

  private startDelivery(url: string, base: Record<string, string | undefined>, payment: SandboxPayment | null): SandboxDelivery {
    const delivery: SandboxDelivery = {
      id: ++this.deliverySeq,
      url,
      outerTradeNo: base.outer_trade_no ?? null,
      state: 'pending',
      attempts: payment ? payment.attempts : [],
    }
    this.deliveryList.push(delivery)
    const run = this.runDelivery(delivery, base, payment).finally(() => {
      this.running.delete(run)
      this.poke()
    })
    this.running.add(run)
    return delivery
  }

  private setState(delivery: SandboxDelivery, payment: SandboxPayment | null, state: DeliveryState): void {
    delivery.state = state
    if (payment) payment.state = state
  }

  /**
   * The retry loop. An attempt counts as acknowledged only when the body read is exactly
   * `success`: no trimming, no case folding (the seed: "返回success(不要带任何其他源码内容)").
   * Guanaitong documents only the body, so the HTTP status is recorded but not required to be 200.
   */
  private async runDelivery(delivery: SandboxDelivery, base: Record<string, string | undefined>, payment: SandboxPayment | null): Promise<void> {
    for (let i = 0; i < this.retrySchedule.length; i++) {
      await this.sleep(this.retrySchedule[i] * this.timeScale)
      if (this.closed) break
      const fields = base.sign === undefined
        ? signNotification(base, this.appSecret, this.signType, this.now)
        : withoutUndefined({ ...base, timestamp: base.timestamp ?? String(Math.floor(this.now() / 1000)) })
      const at = this.now()
      const started = performance.now()
      const controller = new AbortController()
      this.controllers.add(controller)
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        controller.abort(new Error('timeout'))
      }, this.notifyTimeoutMs)
      let status: number | null = null
      let body: string | null = null
      let error: string | null = null
      this.counters.notifyAttempts += 1
      try {
        const res = await fetch(delivery.url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: encodeForm(fields),
          redirect: 'manual',
          signal: controller.signal,
        })
        status = res.status
        body = await res.text()
      } catch (e) {
        error = timedOut ? `no complete answer within ${this.notifyTimeoutMs} ms` : describeError(e)
        body = null
      } finally {
        clearTimeout(timer)
        this.controllers.delete(controller)
      }
      if (this.closed) break
      const acknowledged = body === 'success'
      const attempt: SandboxAttempt = {
        attempt: delivery.attempts.length + 1,
        at,
        fields,
        status,
        body: body === null ? null : body.slice(0, RECORDED_BODY_LIMIT),
        error,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      }
      delivery.attempts.push(attempt)
      if (acknowledged) this.setState(delivery, payment, 'acknowledged')
      this.emitSafe('attempt', { delivery, payment, attempt })
      if (acknowledged) {
        this.emitSafe('acknowledged', { delivery, payment, attempt })
        return
      }
      this.poke()
    }
    if (this.closed) {
      this.setState(delivery, payment, 'cancelled')
      return
    }
    this.setState(delivery, payment, 'abandoned')
    this.emitSafe('abandoned', { delivery, payment })
  }

  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const sleep: Sleep = {
        timer: setTimeout(() => {
          this.sleeps.delete(sleep)
          resolve()
        }, ms),
        resolve,
      }
      this.sleeps.add(sleep)
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

  // ---------------------------------------------------------------- HTTP

  private nextTradeNo(): string {
    this.tradeSeq += 1
    return `${datePart(this.now())}${20_000_000 + this.tradeSeq}`
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    this.counters.requests += 1
    const method = req.method ?? 'GET'
    const target = new URL(req.url ?? '/', 'http://sandbox.invalid')
    const path = target.pathname
    if (path === TOKEN_PATH) this.counters.tokenCalls += 1
    else if (path === PAY_PATH) this.counters.payCalls += 1
    const fault = this.takeFault(path)
    const finish = (status: number, code: number | null, msg: string | null, traceId: string | null) => {
      this.emitSafe('request', {
        method, path, status, code, msg, traceId, fault: fault?.kind ?? null,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      })
    }

    if (fault && !fault.processed) {
      req.resume()
      this.spoil(res, fault)
      finish(fault.kind === 'hang' ? 0 : fault.status, null, null, null)
      return
    }

    const traceId = randomBytes(8).toString('hex')
    const answer = await this.answer(req, method, path, target)
    if (fault) {
      this.spoil(res, fault, traceId)
      finish(fault.kind === 'hang' ? 0 : fault.status, null, null, fault.kind === 'garble' ? traceId : null)
      return
    }
    const text = JSON.stringify(answer.body)
    res.writeHead(answer.status, {
      'content-type': 'application/json;charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      'x-trace-id': traceId,
    })
    res.end(text)
    finish(answer.status, answer.body.code, answer.body.msg, traceId)
  }

  /** Applies a fault to the response: an HTML error page, no answer at all, or broken JSON. */
  private spoil(res: ServerResponse, fault: Fault, traceId?: string): void {
    if (fault.kind === 'hang') {
      this.hung.add(res)
      res.on('close', () => this.hung.delete(res))
      return
    }
    if (fault.kind === '5xx') {
      // A gateway's page: no x-trace-id, the request never reached the application.
      const page = BAD_GATEWAY_PAGE(fault.status)
      res.writeHead(fault.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) })
      res.end(page)
      return
    }
    const broken = '{"code":0,"msg":"OK","data":'
    const headers: Record<string, string | number> = {
      'content-type': 'application/json;charset=UTF-8',
      'content-length': Buffer.byteLength(broken),
    }
    if (traceId) headers['x-trace-id'] = traceId
    res.writeHead(200, headers)
    res.end(broken)
  }

  private async answer(req: IncomingMessage, method: string, path: string, target: URL): Promise<Answer> {
    if (path !== TOKEN_PATH && path !== PAY_PATH) {
      req.resume()
      return { status: 404, body: { code: SANDBOX_CODES.NOT_FOUND, msg: `no such API in the sandbox: ${method} ${path}`, data: null } }
    }
    if (method !== 'POST') {
      req.resume()
      return { status: 405, body: { code: SANDBOX_CODES.METHOD_NOT_ALLOWED, msg: `${path} takes POST, not ${method}`, data: null } }
    }
    try {
      const params = await this.readParams(req, target)
      const data = path === TOKEN_PATH ? this.createToken(params) : this.pay(params)
      return { status: 200, body: { code: 0, msg: 'OK', data } }
    } catch (error) {
      if (error instanceof Refusal) return { status: 200, body: { code: error.code, msg: error.msg, data: null } }
      throw error
    }
  }

  private async readParams(req: IncomingMessage, target: URL): Promise<Fields> {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size <= BODY_LIMIT) chunks.push(chunk)
    }
    if (size > BODY_LIMIT) throw new Refusal(SANDBOX_CODES.BAD_REQUEST, `body larger than ${BODY_LIMIT} bytes`)
    const query = parseForm(target.search.slice(1), 'query string')
    if (size === 0) return mergeParams(query, {})
    const type = (req.headers['content-type'] ?? '').toLowerCase()
    const [mime, ...rest] = type.split(';').map((s) => s.trim())
    if (mime !== 'application/x-www-form-urlencoded') {
      throw new Refusal(SANDBOX_CODES.BAD_REQUEST, `Content-Type must be application/x-www-form-urlencoded; got ${JSON.stringify(type || 'none')}`)
    }
    const charset = rest.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '')
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new Refusal(SANDBOX_CODES.BAD_REQUEST, `the sandbox reads UTF-8 bodies only; got charset=${charset}`)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    if (text.includes('\uFFFD')) throw new Refusal(SANDBOX_CODES.BAD_REQUEST, 'body is not valid UTF-8')
    return mergeParams(query, parseForm(text, 'body'))
  }

  /** appid, timestamp, sign: the checks every call gets. */
  private checkPublic(params: Fields): void {
    if (!params.appid) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, 'appid is required')
    if (params.appid !== this.appId) throw new Refusal(SANDBOX_CODES.UNKNOWN_APPID, `appid ${params.appid} is not an application of the sandbox`)
    const ts = params.timestamp
    if (!ts) throw new Refusal(SANDBOX_CODES.BAD_TIMESTAMP, 'timestamp is required')
    if (!/^[0-9]{1,12}$/.test(ts)) throw new Refusal(SANDBOX_CODES.BAD_TIMESTAMP, `timestamp must be Unix seconds (digits only); got ${JSON.stringify(ts)}`)
    const skew = Number(ts) - this.now() / 1000
    if (Math.abs(skew) > this.toleranceSec) {
      throw new Refusal(SANDBOX_CODES.BAD_TIMESTAMP, `timestamp ${ts} is ${Math.round(Math.abs(skew))} s ${skew < 0 ? 'behind' : 'ahead of'} the sandbox clock (allowed ${this.toleranceSec} s)`)
    }
    if (!params.sign) throw new Refusal(SANDBOX_CODES.BAD_SIGN, 'sign is required')
    if (!verifySign(params, this.appSecret)) {
      throw new Refusal(SANDBOX_CODES.BAD_SIGN, 'sign does not match the parameters (expected lower-case hex sha1/sha256/sha512 of the sorted raw parameters plus appsecret)')
    }
  }

  private createToken(params: Fields): { access_token: string; expires_in: number } {
    this.checkPublic(params)
    if (params.grant_type !== 'client_credential') {
      throw new Refusal(SANDBOX_CODES.INVALID_PARAM, `grant_type must be client_credential; got ${JSON.stringify(params.grant_type ?? null)}`)
    }
    const accessToken = randomBytes(16).toString('hex')
    const expiresAt = this.now() + this.tokenTtlSec * 1000
    this.tokens.set(accessToken, expiresAt)
    this.counters.tokensIssued += 1
    this.emitSafe('token', { accessToken, expiresIn: this.tokenTtlSec, expiresAt })
    return { access_token: accessToken, expires_in: this.tokenTtlSec }
  }

  private pay(params: Fields): string {
    this.checkPublic(params)
    const token = params.access_token
    if (!token) throw new Refusal(SANDBOX_CODES.INVALID_PARAM, 'access_token is required')
    const expiresAt = this.tokens.get(token)
    if (expiresAt === undefined) throw new Refusal(TOKEN_INVALID_CODE, 'access_token is invalid (unknown or revoked): create a new one')
    if (this.now() >= expiresAt) {
      this.tokens.delete(token)
      throw new Refusal(TOKEN_INVALID_CODE, 'access_token has expired: create a new one')
    }
    const checked = checkPayParams(params)
    if (this.paymentsByNo.has(checked.outerTradeNo)) throw new Refusal(OUTER_TRADE_NO_EXISTS_CODE, '外部交易号已存在')
    let outcome = this.defaultOutcome
    if (this.failNext > 0) {
      this.failNext -= 1
      outcome = 'failed'
    }
    const payment: SandboxPayment = {
      outerTradeNo: checked.outerTradeNo,
      tradeNo: this.nextTradeNo(),
      buyerOpenId: checked.buyerOpenId,
      totalAmount: checked.totalAmount,
      totalFen: checked.totalFen,
      assetType: checked.assetType,
      assetOpenId: checked.assetOpenId,
      reason: checked.reason,
      attach: checked.attach,
      notifyUrl: checked.notifyUrl,
      outcome,
      state: checked.notifyUrl ? 'pending' : 'unnotified',
      attempts: [],
      createdAt: this.now(),
      source: 'pay',
      params: { ...params },
    }
    this.paymentsByNo.set(payment.outerTradeNo, payment)
    this.counters.paymentsCreated += 1
    this.emitSafe('pay', { payment })
    if (checked.notifyUrl) this.startDelivery(checked.notifyUrl, this.notificationFields(payment), payment)
    return payment.tradeNo
  }
}

function withoutUndefined(fields: Record<string, string | undefined>): Fields {
  const out: Fields = {}
  for (const key of Object.keys(fields)) if (fields[key] !== undefined) out[key] = fields[key] as string
  return out
}

function lastAttempt(attempts: readonly SandboxAttempt[]): string {
  const last = attempts[attempts.length - 1]
  if (!last) return 'none'
  return last.error ? `error ${last.error}` : `HTTP ${last.status} ${JSON.stringify((last.body ?? '').slice(0, 80))}`
}

/** A new sandbox; call `start()` on it. */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  return new Sandbox(options)
}
