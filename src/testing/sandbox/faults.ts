/**
 * Faults a test asks for: spoilt answers to the next requests (see respond.ts for what they look
 * like) and pays whose notification reports a failed payment.
 */
import type { FaultKind, FaultOptions, PayOutcome, Respond5xxOptions } from './types'

export interface Fault {
  kind: FaultKind
  path: string | undefined
  /** Requests it still applies to; Infinity until cleared. */
  remaining: number
  processed: boolean
  /** HTTP status answered; 0 for a hang, which answers nothing. */
  status: number
}

export class Faults {
  private queue: Fault[] = []
  private failNext = 0
  private outcome: PayOutcome = 'paid'
  private readonly failingAssets = new Set<string>()

  failNextPays(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new TypeError('[express-guanaitong] failNextPays(n) needs a non-negative integer')
    this.failNext = n
  }

  setPayOutcome(outcome: PayOutcome): void {
    if (outcome !== 'paid' && outcome !== 'failed') throw new TypeError("[express-guanaitong] setPayOutcome takes 'paid' or 'failed'")
    this.outcome = outcome
  }

  /** Like an asset without enough balance: every pay with it fails, for the sandbox's lifetime. */
  failPaysWithAsset(assetOpenId: string): void {
    if (typeof assetOpenId !== 'string' || assetOpenId === '') throw new TypeError('[express-guanaitong] failPaysWithAsset needs an asset_open_id')
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
    if (!Number.isInteger(status) || status < 500 || status > 599) throw new TypeError('[express-guanaitong] respond5xx status must be 500-599')
    this.add('5xx', options, status)
  }

  hang(options: FaultOptions): void {
    this.add('hang', options, 0)
  }

  garble(options: FaultOptions): void {
    this.add('garble', options, 200)
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

  private add(kind: FaultKind, options: FaultOptions, status: number): void {
    const times = options.times ?? 1
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new TypeError('[express-guanaitong] fault times must be a positive integer or Infinity')
    }
    this.queue.push({ kind, path: options.path, remaining: times, processed: options.processed ?? false, status })
  }
}
