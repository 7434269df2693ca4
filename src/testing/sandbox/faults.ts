/**
 * Faults a test asks for: spoilt answers to the next requests (see respond.ts for what they look
 * like) and pays whose notification reports a failed payment.
 */
import { ParamError } from '../../kernel/errors'
import type { AnswerDataOptions, BreakOptions, FaultKind, FaultOptions, PayOutcome, RefuseOptions, Respond5xxOptions, RespondWithOptions } from './types'

export interface Fault {
  kind: FaultKind
  path: string | undefined
  /** Requests it still applies to; Infinity until cleared. */
  remaining: number
  processed: boolean
  /** HTTP status answered; 0 when nothing is (a hang or reset before the answer). */
  status: number
  /** `hang`/`reset`: break the connection halfway through the answer instead of before it. */
  midAnswer: boolean
  /** `refuse`: the code and message answered. */
  code: number | null
  msg: string | null
  /** `data`: what the code-0 answer carries as `data`. */
  data?: unknown
  /** `custom`: the headers and body answered, with `status`. */
  headers: Record<string, string>
  body: string
}

export class Faults {
  private queue: Fault[] = []
  private failNext = 0
  private outcome: PayOutcome = 'paid'
  private readonly failingAssets = new Set<string>()

  failNextPays(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new ParamError('failNextPays(n)', 'needs a non-negative integer')
    this.failNext = n
  }

  setPayOutcome(outcome: PayOutcome): void {
    if (outcome !== 'paid' && outcome !== 'failed') throw new ParamError('setPayOutcome(outcome)', "takes 'paid' or 'failed'")
    this.outcome = outcome
  }

  /** Like an asset without enough balance: every pay with it fails, for the sandbox's lifetime. */
  failPaysWithAsset(assetOpenId: string): void {
    if (typeof assetOpenId !== 'string' || assetOpenId === '') throw new ParamError('failPaysWithAsset(assetOpenId)', 'needs an asset_open_id')
    this.failingAssets.add(assetOpenId)
  }

  /** The outcome of the pay being made now with `assetOpenId`; uses up one of `failNextPays`. */
  nextPayOutcome(assetOpenId: string): PayOutcome {
    if (this.failingAssets.has(assetOpenId)) return 'failed'
    if (this.failNext > 0) {
      this.failNext -= 1
      return 'failed'
    }
    return this.outcome
  }

  respond5xx(options: Respond5xxOptions): void {
    const status = options.status ?? 502
    if (!Number.isInteger(status) || status < 500 || status > 599) throw new ParamError('respond5xx({ status })', 'must be 500-599')
    this.add('5xx', options, status)
  }

  hang(options: BreakOptions): void {
    this.add('hang', options, options.midAnswer ? 200 : 0, { midAnswer: options.midAnswer === true })
  }

  reset(options: BreakOptions): void {
    this.add('reset', options, options.midAnswer ? 200 : 0, { midAnswer: options.midAnswer === true })
  }

  garble(options: FaultOptions): void {
    this.add('garble', options, 200)
  }

  refuse(options: RefuseOptions): void {
    if (!Number.isInteger(options?.code) || options.code === 0) throw new ParamError('refuse({ code })', 'must be a non-zero integer')
    if (options.msg !== undefined && typeof options.msg !== 'string') throw new ParamError('refuse({ msg })', 'must be a string')
    this.add('refuse', options, 200, { code: options.code, msg: options.msg ?? 'refused by the sandbox' })
  }

  answerData(options: AnswerDataOptions): void {
    if (options === null || typeof options !== 'object' || !('data' in options)) throw new ParamError('answerData({ data })', 'needs the data to answer')
    this.add('data', options, 200, { data: options.data })
  }

  respondWith(options: RespondWithOptions): void {
    const status = options.status ?? 200
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new ParamError('respondWith({ status })', 'must be 200-599')
    const headers = { ...options.headers }
    if (Object.values(headers).some((value) => typeof value !== 'string')) throw new ParamError('respondWith({ headers })', 'must map names to strings')
    let body = ''
    if (typeof options.body === 'string') body = options.body
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body)
      if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json;charset=UTF-8'
    }
    this.add('custom', options, status, { headers, body })
  }

  /** Drops every pending fault and `failNextPays`, and sets the outcome back to 'paid'. Failing assets stay: they are the sandbox's data, not a fault. */
  clear(): void {
    this.queue = []
    this.failNext = 0
    this.outcome = 'paid'
  }

  /** The fault for a request to `path`, if any: the oldest matching one, used up once per request. */
  take(path: string): Fault | null {
    const fault = this.queue.find((f) => f.path === undefined || f.path === path)
    if (!fault) return null
    fault.remaining -= 1
    if (fault.remaining <= 0) this.queue = this.queue.filter((f) => f !== fault)
    return fault
  }

  private add(kind: FaultKind, options: FaultOptions, status: number, extra: Partial<Pick<Fault, 'midAnswer' | 'code' | 'msg' | 'data' | 'headers' | 'body'>> = {}): void {
    const times = options.times ?? 1
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new ParamError('fault times', 'must be a positive integer or Infinity')
    }
    this.queue.push({
      kind, path: options.path, remaining: times, processed: options.processed ?? false, status,
      midAnswer: false, code: null, msg: null, headers: {}, body: '', ...extra,
    })
  }
}
