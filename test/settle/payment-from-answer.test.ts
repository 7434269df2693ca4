/**
 * paymentFromPayAnswer on its own (src/core/settle/pay-answer.ts): the payment a pay answered `code: 0`
 * stands for, which the pay answer settles as the notification would. Through the router and the
 * sandbox: pay-answer.test.ts.
 */
import { expect } from 'chai'
import { paymentFromPayAnswer } from '../../src/core/settle/pay-answer'
import { ParamError } from '../../src/kernel/errors'
import type { PayParams } from '../../src/kernel/types'
import { APP_ID } from '../helpers'

const PARAMS: PayParams = {
  buyer_open_id: 'buyer', reason: '午餐', total_amount: '19.9', outer_trade_no: 'O1', asset_type: 1, asset_open_id: 'asset',
}

describe('paymentFromPayAnswer', () => {
  it('is the payment as sent, with the trade number answered, the amount normalized and the answer\'s time in seconds', () => {
    const payment = paymentFromPayAnswer(APP_ID, { ...PARAMS, attach: 'a=1&b' }, 'T900', 1_700_000_000_999)
    expect(payment).to.deep.equal({
      appId: APP_ID, outerTradeNo: 'O1', tradeNo: 'T900', buyerOpenId: 'buyer', totalAmount: '19.90', totalFen: 1990,
      attach: 'a=1&b', timestamp: 1_700_000_000,
      raw: {
        buyer_open_id: 'buyer', reason: '午餐', total_amount: '19.90', outer_trade_no: 'O1', asset_type: '1', asset_open_id: 'asset',
        // As sent on the wire, the same string the notification's raw.attach carries.
        attach: 'a%3D1%26b', trade_no: 'T900',
      },
    })
  })

  it('raw leaves out parameters that were not sent, and attach is empty when none was', () => {
    const payment = paymentFromPayAnswer(APP_ID, { ...PARAMS, attach: undefined, notify_url: null as never, trade_info: 0 }, 'T1', 0)
    expect(payment.attach).to.equal('')
    expect(payment.raw).to.not.have.any.keys('attach', 'notify_url')
    expect(payment.raw.trade_info).to.equal('0')
    expect(paymentFromPayAnswer(APP_ID, { ...PARAMS, attach: 5 as never }, 'T1', 0).attach).to.equal('')
  })

  it('refuses an amount the client would not have sent', () => {
    for (const amount of ['0', '1.001', 'abc', 19.9 as never]) {
      expect(() => paymentFromPayAnswer(APP_ID, { ...PARAMS, total_amount: amount }, 'T1', 0), String(amount))
        .to.throw(ParamError, /^\[express-guanaitong\] total_amount /)
    }
  })
})
