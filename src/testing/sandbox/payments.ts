/**
 * The payments the sandbox accepted, keyed by outer trade number (which the platform refuses to
 * reuse), and what their notification says.
 */
import type { SandboxPayment } from './types'

/** A payment before the sandbox records it: state, attempts and creation time are its own. */
export type NewPayment = Omit<SandboxPayment, 'state' | 'attempts' | 'createdAt'>

/** Yyyymmdd in Guanaitong's time zone (GMT+8). */
function datePart(ms: number): string {
  return new Date(ms + 8 * 3600 * 1000).toISOString().slice(0, 10).replace(/-/g, '')
}

export class PaymentBook {
  // A Map keeps insertion order, which is the order `payments` promises.
  private readonly byNo = new Map<string, SandboxPayment>()
  private tradeSeq = 0

  constructor(private readonly now: () => number) {}

  has(outerTradeNo: string): boolean {
    return this.byNo.has(outerTradeNo)
  }

  get(outerTradeNo: string): SandboxPayment | undefined {
    return this.byNo.get(outerTradeNo)
  }

  /** In the order they were made, as a new array. */
  list(): SandboxPayment[] {
    return [...this.byNo.values()]
  }

  /** A trade number shaped like Guanaitong's: the GMT+8 date, then a sequence. */
  nextTradeNo(): string {
    this.tradeSeq += 1
    return `${datePart(this.now())}${20_000_000 + this.tradeSeq}`
  }

  /** Records the payment; it is 'pending' when it has somewhere to be notified, else 'unnotified'. */
  add(input: NewPayment): SandboxPayment {
    const payment: SandboxPayment = {
      outerTradeNo: input.outerTradeNo,
      tradeNo: input.tradeNo,
      buyerOpenId: input.buyerOpenId,
      totalAmount: input.totalAmount,
      totalFen: input.totalFen,
      assetType: input.assetType,
      assetOpenId: input.assetOpenId,
      reason: input.reason,
      attach: input.attach,
      notifyUrl: input.notifyUrl,
      outcome: input.outcome,
      state: input.notifyUrl === null ? 'unnotified' : 'pending',
      attempts: [],
      createdAt: this.now(),
      source: input.source,
      params: input.params,
    }
    this.byNo.set(payment.outerTradeNo, payment)
    return payment
  }
}

/** The notification's fields before `timestamp` and `sign`; a failed payment has an empty `trade_no`. */
export function notificationFields(payment: SandboxPayment, appId: string): Record<string, string | undefined> {
  return {
    appid: appId,
    outer_trade_no: payment.outerTradeNo,
    buyer_open_id: payment.buyerOpenId,
    attach: payment.attach ?? undefined,
    total_amount: payment.totalAmount,
    trade_no: payment.outcome === 'paid' ? payment.tradeNo : '',
  }
}
