/** The records the sandbox keeps and the events it emits: its public data shapes. */
import type { Fields } from '../../kernel/types'

export type PayOutcome = 'paid' | 'failed'
/** When a pay's notification goes out, relative to the pay's answer; `off` never. */
export type NotificationMode = 'after-answer' | 'before-answer' | 'off'
/** Every `NotificationMode`. */
export const NOTIFICATION_MODES: readonly NotificationMode[] = Object.freeze(['after-answer', 'before-answer', 'off'])
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

/**
 * `5xx` a gateway's HTML error page; `hang` no answer; `reset` the connection closed without an
 * answer; `garble` a 200 whose body is not JSON; `refuse` a well-formed refusal `{code, msg}`;
 * `data` a code-0 answer whose `data` the test chooses; `custom` the answer the test wrote (`respondWith`).
 */
export type FaultKind = '5xx' | 'hang' | 'reset' | 'garble' | 'refuse' | 'data' | 'custom'

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

/** Options of `hang()` and `reset()`. */
export interface BreakOptions extends FaultOptions {
  /**
   * Break the connection in the middle of the answer instead of before it: the status line, the
   * headers (with the full Content-Length) and half of the body are sent first. The body is the
   * real answer's when `processed`, else the start of one.
   */
  midAnswer?: boolean
}

/** Options of `refuse()`: the code and message of the refusal. */
export interface RefuseOptions extends FaultOptions {
  /** The `code` answered; the test chooses it (Guanaitong's codes are not all documented). */
  code: number
  /** The `msg` answered. Default 'refused by the sandbox'. */
  msg?: string
}

/** Options of `answerData()`: the `data` of the code-0 answer. */
export interface AnswerDataOptions extends FaultOptions {
  /** Answered as `data` in place of the real one (a pay's trade number), e.g. `' '` or a 2 MB string. */
  data: unknown
}

/**
 * Options of `respondWith()`: the whole HTTP answer, for what the other faults do not give (a
 * proxy's page with status 200, a redirect, a success without data, a token with a bad lifetime).
 */
export interface RespondWithOptions extends FaultOptions {
  /** HTTP status. Default 200. */
  status?: number
  /** Sent as given, with Content-Length added; no `x-trace-id` unless given here. */
  headers?: Record<string, string>
  /** A string is sent as it is; anything else as JSON, with Content-Type application/json unless `headers` has one. Default empty. */
  body?: unknown
}

/** Emitted after every answered (or hung) request, for logs and a CLI. */
export interface SandboxRequestEvent {
  method: string
  path: string
  /**
   * The parameters as received, query string and form body together (`sign` and `access_token`
   * included); null when the body could not be read as a UTF-8 form.
   */
  params: Fields | null
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
  /** Amount in yuan as a decimal string; normalised to two decimals ("100" → "100.00"). */
  totalAmount: string
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
