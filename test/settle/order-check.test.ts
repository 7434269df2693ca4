/**
 * `findOrder`'s answer against a verified payment (src/core/settle/order-check.ts): every form a
 * database driver hands an amount back in is read exactly, and anything that cannot be read is a
 * mismatch, never a throw and never a pass.
 */
import { expect } from 'chai'
import { compareOrder } from '../../src/core/settle/order-check'
import type { Notification, OrderSummary } from '../../src/kernel/types'

const paid: Notification = {
  appId: '20110698', outerTradeNo: 'O1', tradeNo: 'T1', buyerOpenId: 'buyer', totalAmount: '12.50', totalFen: 1250,
  attach: '', timestamp: 1_700_000_000, raw: {},
}
const problemOf = (order: OrderSummary | null | undefined) => compareOrder(paid, order)?.problem ?? null

describe('compareOrder', () => {
  const matching: Array<[string, OrderSummary]> = [
    ['fen as a number', { totalFen: 1250 }],
    ['fen as a string of digits (node-postgres BIGINT)', { totalFen: '1250' }],
    ['fen as a bigint', { totalFen: 1250n }],
    ['fen null, the amount as a decimal string (NUMERIC)', { totalFen: null as unknown as undefined, totalAmount: '12.5000' }],
    ['the amount as a number', { totalAmount: 12.5 }],
    ['the amount and the buyer', { totalAmount: '12.50', buyerOpenId: 'buyer' }],
  ]
  for (const [what, order] of matching) {
    it(`matches ${what}`, () => {
      expect(problemOf(order)).to.equal(null)
    })
  }

  const amountMismatches: Array<[string, OrderSummary]> = [
    ['another amount in fen', { totalFen: 1251 }],
    ['fen with a decimal point', { totalFen: '12.50' }],
    ['fen past 2^53 as a number', { totalFen: 2 ** 53 + 2 }],
    ['fen of another type', { totalFen: true as unknown as number }],
    ['an amount that is no decimal', { totalAmount: '12.50 ' }],
    ['a float amount', { totalAmount: 0.1 + 0.2 }],
    ['an amount that is not finite', { totalAmount: Number.NaN }],
    ['an amount of another type', { totalAmount: [12.5] as unknown as number }],
    ['no amount at all', {}],
  ]
  for (const [what, order] of amountMismatches) {
    it(`reads ${what} as an amount mismatch`, () => {
      expect(problemOf(order)).to.equal('amount')
    })
  }

  it('reads an unknown order and another buyer as such', () => {
    expect(problemOf(null)).to.equal('unknown-order')
    expect(problemOf(undefined)).to.equal('unknown-order')
    expect(problemOf({ totalFen: 1250, buyerOpenId: 'someone else' })).to.equal('buyer')
  })
})
