/**
 * Waiting, for tests, until a payment or delivery reaches a state. A waiter is checked again
 * whenever a delivery moves on (`poke`), not on a polling timer, so it resolves as soon as it can.
 */
import { GuanaitongError } from '../../kernel/errors'
import type { Deliveries } from './deliveries'
import type { PaymentBook } from './payments'
import type { DeliveryState, PaymentState, SandboxAttempt, SandboxDelivery, SandboxPayment } from './types'

/** The code of every failed wait: the state it waited for cannot be reached (any more). */
const WAIT_FAILED = 'SANDBOX_WAIT_FAILED'

interface Waiter {
  /** True once the waiter settled (resolved or rejected). */
  check: () => boolean
  fail: (error: Error) => void
}

/** The last attempt in a few words, for the message of a wait that failed. */
function lastAttempt(attempts: readonly SandboxAttempt[]): string {
  const last = attempts[attempts.length - 1]
  if (!last) return 'none'
  return last.error ? `error ${last.error}` : `HTTP ${last.status} ${JSON.stringify((last.body ?? '').slice(0, 80))}`
}

export class Waiters {
  private readonly waiters = new Set<Waiter>()

  constructor(
    private readonly payments: PaymentBook,
    private readonly deliveries: Deliveries,
    private readonly isClosed: () => boolean,
  ) {}

  forPayment(outerTradeNo: string, state: PaymentState | undefined, timeoutMs: number): Promise<SandboxPayment> {
    return this.waitFor(`payment ${outerTradeNo}${state ? ` to be ${state}` : ''}`, timeoutMs, () => {
      const payment = this.payments.get(outerTradeNo)
      if (!payment) return undefined
      if (state === undefined || payment.state === state) return payment
      if (payment.state !== 'pending') {
        throw new GuanaitongError(`sandbox: payment ${outerTradeNo} is ${payment.state}, not ${state} (${payment.attempts.length} attempts; last: ${lastAttempt(payment.attempts)})`, WAIT_FAILED)
      }
      return undefined
    }, () => {
      const payment = this.payments.get(outerTradeNo)
      return payment ? `it is ${payment.state} after ${payment.attempts.length} attempts (last: ${lastAttempt(payment.attempts)})` : 'no such payment'
    })
  }

  forDelivery(id: number, state: DeliveryState | undefined, timeoutMs: number): Promise<SandboxDelivery> {
    return this.waitFor(`delivery ${id}${state ? ` to be ${state}` : ' to settle'}`, timeoutMs, () => {
      const d = this.deliveries.find(id)
      if (!d || d.state === 'pending') return undefined
      if (state === undefined || d.state === state) return d
      throw new GuanaitongError(`sandbox: delivery ${id} is ${d.state}, not ${state} (last: ${lastAttempt(d.attempts)})`, WAIT_FAILED)
    }, () => `it is ${this.deliveries.find(id)?.state ?? 'unknown'}`)
  }

  forIdle(timeoutMs: number): Promise<void> {
    if (this.isOver()) return Promise.resolve()
    return this.waitFor('all deliveries to settle', timeoutMs, () => (this.deliveries.pending === 0 ? true : undefined),
      () => `${this.deliveries.pending} still pending`).then(() => undefined)
  }

  /** Checks every waiter again. */
  poke(): void {
    for (const waiter of [...this.waiters]) waiter.check()
  }

  /** Rejects every waiter still waiting, each with its own error. */
  failAll(message: string): void {
    for (const waiter of [...this.waiters]) waiter.fail(new GuanaitongError(message, WAIT_FAILED))
    this.waiters.clear()
  }

  /** Closed with no delivery running: nothing can change any more, so a wait could only time out. */
  private isOver(): boolean {
    return this.isClosed() && this.deliveries.pending === 0
  }

  /**
   * Resolves with what `check` returns once it is not undefined; rejects when `check` throws, at
   * `timeoutMs`, or at once when the sandbox is over. `status` says where things stand, for the
   * rejection's message.
   */
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
      if (this.isOver()) {
        waiter.fail(new GuanaitongError(`sandbox is closed; waiting for ${what}: ${status()}`, WAIT_FAILED))
        return
      }
      this.waiters.add(waiter)
      timer = setTimeout(() => {
        waiter.fail(new GuanaitongError(`sandbox: timed out after ${timeoutMs} ms waiting for ${what}: ${status()}`, WAIT_FAILED))
      }, timeoutMs)
    })
  }
}
