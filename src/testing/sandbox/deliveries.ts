/**
 * The notification retry loop: each delivery posts on the retry schedule until the shop
 * acknowledges it, the schedule runs out (abandoned) or the sandbox closes (cancelled).
 */
import { causeMessage, errorMessage, GuanaitongError } from '../../kernel/errors'
import type { Fields } from '../../kernel/types'
import { defined, encodeForm, signNotification } from '../sign-notification'
import { elapsedMs } from './elapsed'
import type { SandboxConfig } from './options'
import type { DeliveryState, SandboxAttempt, SandboxDelivery, SandboxEvents, SandboxPayment, SandboxStats } from './types'

const RECORDED_BODY_LIMIT = 4096

/** Notification fields before `timestamp` and `sign`; `undefined` ones are not sent. */
export type NotificationBase = Record<string, string | undefined>

/** Emits without letting a listener's error into the loop (see `Sandbox.emitSafe`). */
export type EmitSafe = <K extends keyof SandboxEvents>(event: K, ...args: SandboxEvents[K]) => void

type DeliveryConfig = Pick<SandboxConfig, 'appSecret' | 'signType' | 'now' | 'retrySchedule' | 'timeScale' | 'notifyTimeoutMs'>

/** What one POST got back: an answer (status and body) or the reason there was none. */
interface PostResult {
  status: number | null
  body: string | null
  error: string | null
}

interface Sleep {
  timer: NodeJS.Timeout
  resolve: () => void
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return errorMessage(error)
  // fetch throws a bare "fetch failed"; the reason (ECONNREFUSED, ...) is in its cause.
  const cause = (error as { cause?: unknown }).cause
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return `${error.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`.trim()
  }
  // The sandbox's own abort reason ('sandbox closed') is told without the package prefix.
  return causeMessage(error)
}

/** A delivery made for a payment shares its state with it. */
function setState(delivery: SandboxDelivery, payment: SandboxPayment | null, state: DeliveryState): void {
  delivery.state = state
  if (payment) payment.state = state
}

export class Deliveries {
  private readonly list: SandboxDelivery[] = []
  private readonly running = new Set<Promise<void>>()
  private readonly sleeps = new Set<Sleep>()
  private readonly controllers = new Set<AbortController>()
  private seq = 0
  private closed = false

  /**
   * @param changed called whenever a delivery may have moved on (an attempt failed, a loop
   *   ended), so waiters can look again.
   */
  constructor(
    private readonly config: DeliveryConfig,
    private readonly counters: SandboxStats,
    private readonly emit: EmitSafe,
    private readonly changed: () => void,
  ) {}

  /** Every delivery, oldest first, as a new array. */
  all(): SandboxDelivery[] {
    return [...this.list]
  }

  find(id: number): SandboxDelivery | undefined {
    return this.list.find((d) => d.id === id)
  }

  /** Deliveries whose loop has not ended. */
  get pending(): number {
    return this.running.size
  }

  /** @param firstAttemptDone called once the first attempt has its answer (or none), or the loop ended without one. */
  start(url: string, base: NotificationBase, payment: SandboxPayment | null, firstAttemptDone: () => void = noop): SandboxDelivery {
    const delivery: SandboxDelivery = {
      id: ++this.seq,
      url,
      outerTradeNo: base.outer_trade_no ?? null,
      state: 'pending',
      attempts: payment ? payment.attempts : [],
    }
    this.list.push(delivery)
    const run = this.run(delivery, base, payment, firstAttemptDone).finally(() => {
      firstAttemptDone()
      this.running.delete(run)
      this.changed()
    })
    this.running.add(run)
    return delivery
  }

  /** Cuts every wait short and aborts the POSTs in flight; resolves once every loop has ended. */
  async close(): Promise<void> {
    this.closed = true
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer)
      sleep.resolve()
    }
    this.sleeps.clear()
    for (const controller of this.controllers) controller.abort(new GuanaitongError('sandbox closed', 'SANDBOX_STATE'))
    await Promise.allSettled([...this.running])
  }

  /**
   * An attempt counts as acknowledged only when the body read is exactly `success`: no trimming,
   * no case folding (the seed: "返回success(不要带任何其他源码内容)"). Guanaitong documents only
   * the body, so the HTTP status is recorded but not required to be 200.
   */
  private async run(delivery: SandboxDelivery, base: NotificationBase, payment: SandboxPayment | null, firstAttemptDone: () => void): Promise<void> {
    const { retrySchedule, timeScale, appSecret, signType, now } = this.config
    for (let i = 0; i < retrySchedule.length; i++) {
      await this.sleep(retrySchedule[i] * timeScale)
      if (this.closed) break
      // Each attempt is signed afresh, as the platform does; a given sign is sent as is (tests of bad signs).
      const fields = base.sign === undefined
        ? signNotification(base, appSecret, signType, now)
        : defined({ ...base, timestamp: base.timestamp ?? String(Math.floor(now() / 1000)) })
      const at = now()
      const started = performance.now()
      this.counters.notifyAttempts += 1
      const { status, body, error } = await this.post(delivery.url, fields)
      if (this.closed) break
      const acknowledged = body === 'success'
      const attempt: SandboxAttempt = {
        attempt: delivery.attempts.length + 1,
        at,
        fields,
        status,
        body: body === null ? null : body.slice(0, RECORDED_BODY_LIMIT),
        error,
        durationMs: elapsedMs(started),
      }
      delivery.attempts.push(attempt)
      if (acknowledged) setState(delivery, payment, 'acknowledged')
      this.emit('attempt', { delivery, payment, attempt })
      firstAttemptDone()
      if (acknowledged) {
        this.emit('acknowledged', { delivery, payment, attempt })
        return
      }
      this.changed()
    }
    if (this.closed) {
      setState(delivery, payment, 'cancelled')
      return
    }
    setState(delivery, payment, 'abandoned')
    this.emit('abandoned', { delivery, payment })
  }

  /** One POST, given up after `notifyTimeoutMs` or when the sandbox closes. */
  private async post(url: string, fields: Fields): Promise<PostResult> {
    const controller = new AbortController()
    this.controllers.add(controller)
    let timedOut = false
    const tooLate = `no complete answer within ${this.config.notifyTimeoutMs} ms`
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort(new GuanaitongError(tooLate, 'TIMEOUT'))
    }, this.config.notifyTimeoutMs)
    let status: number | null = null
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: encodeForm(fields),
        // A redirect is the shop's answer, not somewhere to follow: it is recorded and not acknowledged.
        redirect: 'manual',
        signal: controller.signal,
      })
      status = res.status
      return { status, body: await res.text(), error: null }
    } catch (e) {
      const error = timedOut ? tooLate : describeError(e)
      return { status, body: null, error }
    } finally {
      clearTimeout(timer)
      this.controllers.delete(controller)
    }
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
}

function noop() {}
