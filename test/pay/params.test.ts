/**
 * buildPayParams on its own (src/core/pay/params.ts): which names a pay may carry, where notify_url
 * comes from, what preparePayment sees and may return, and the `&`/`=` rule. Through the pay
 * route against the sandbox: test/middleware/pay.test.ts.
 */
import { expect } from 'chai'
import { ConfigError, ParamError } from '../../src/kernel/errors'
import { buildPayParams } from '../../src/core/pay/params'
import { refuseReservedCharacters } from '../../src/kernel/pay-rules'
import type { PayRequestFields } from '../../src/kernel/types'

const BODY = { outer_trade_no: 'O123', reason: '午餐', asset_type: '1', asset_open_id: 'asset' }

async function refused(promise: Promise<unknown>): Promise<ParamError> {
  const err = await promise.then(() => expect.fail('resolved'), (e: unknown) => e)
  expect(err).to.be.instanceOf(ParamError)
  return err as ParamError
}

describe('buildPayParams', () => {
  it('passes the body\'s allowed keys on; a body that is not an object adds nothing', async () => {
    const body = { ...BODY, buyer_open_id: 'b', total_amount: '1.00', attach: 'x', trade_info: { a: 1 } }
    expect(await buildPayParams(body, {})).to.deep.equal(body)
    for (const other of [undefined, null, 'outer_trade_no=O1', 42, [BODY]]) expect(await buildPayParams(other, {}), String(other)).to.deep.equal({})
  })

  it('refuses the first key that is not allowed, naming it; extraPayParams allows exact names only', async () => {
    const unknown = await refused(buildPayParams({ ...BODY, coupon: 'C1' }, {}))
    expect(unknown.field).to.equal('coupon')
    expect(unknown.message, 'says how to allow it').to.match(/extraPayParams/)
    expect(await buildPayParams({ ...BODY, coupon: 'C1' }, { extraPayParams: ['coupon'] })).to.deep.equal({ ...BODY, coupon: 'C1' })
    expect((await refused(buildPayParams({ ...BODY, COUPON: 'C1' }, { extraPayParams: ['coupon'] }))).field).to.equal('COUPON')
    expect((await refused(buildPayParams({ ...BODY, NOTIFY_URL: 'http://evil' }, {}))).field).to.equal('NOTIFY_URL')
  })

  it('never sends the body\'s notify_url: the option\'s, or none', async () => {
    const body = { ...BODY, notify_url: 'http://evil.example/steal' }
    expect(await buildPayParams(body, {})).to.deep.equal(BODY)
    expect(await buildPayParams(body, { notifyUrl: 'https://shop.example/gat/notify' })).to.deep.equal({ ...BODY, notify_url: 'https://shop.example/gat/notify' })
    expect(await buildPayParams(body, {}, async (p) => p)).to.deep.equal(BODY)
  })

  describe('with preparePayment', () => {
    it('sees the body\'s allowed keys (no notify_url) with the order number checked; its result is what is sent', async () => {
      const seen: PayRequestFields[] = []
      const params = await buildPayParams({ ...BODY, notify_url: 'http://evil' }, { notifyUrl: 'https://shop.example/n' }, (p) => {
        seen.push(p)
        return { outer_trade_no: p.outer_trade_no, buyer_open_id: 'server-side', total_amount: '19.99' }
      })
      expect(seen).to.deep.equal([BODY])
      expect(params).to.deep.equal({ outer_trade_no: 'O123', buyer_open_id: 'server-side', total_amount: '19.99', notify_url: 'https://shop.example/n' })
    })

    it('returning nothing is a ConfigError, and nothing is sent (the body\'s buyer and amount are never passed on)', async () => {
      let failed: unknown
      try { await buildPayParams(BODY, {}, () => undefined) } catch (err) { failed = err }
      expect(failed).to.be.instanceOf(ConfigError)
      expect((failed as Error).message).to.match(/preparePayment returned undefined/)
    })

    it('never runs for a missing or malformed order number', async () => {
      let calls = 0
      const prepare = () => { calls += 1; return undefined }
      for (const outer of [undefined, 'O', 42, 'O'.repeat(23)]) {
        expect((await refused(buildPayParams({ ...BODY, outer_trade_no: outer }, {}, prepare))).field).to.equal('outer_trade_no')
      }
      expect(calls).to.equal(0)
    })

    it('its result is held to the same names', async () => {
      const err = await refused(buildPayParams(BODY, {}, (p) => ({ ...p, discount: '1' } as never)))
      expect(err.field).to.equal('discount')
      expect(await buildPayParams(BODY, { extraPayParams: ['discount'] }, (p) => ({ ...p, discount: '1' } as never))).to.deep.equal({ ...BODY, discount: '1' })
    })
  })

  describe('& and =', () => {
    it('are refused in every string value but attach, and in every key; numbers and objects pass', async () => {
      expect((await refused(buildPayParams({ ...BODY, reason: 'a=1' }, {}))).field).to.equal('reason')
      expect((await refused(buildPayParams(BODY, {}, (p) => ({ ...p, buyer_open_id: 'b&x' })))).field).to.equal('buyer_open_id')
      const key = await refused(buildPayParams({ ...BODY, 'a&b': '1' }, { extraPayParams: ['a&b'] }))
      expect(key.field).to.equal('a&b')
      expect(key.message).to.match(/not a valid parameter name/)
      expect(await buildPayParams({ ...BODY, attach: 'a=1&b=2' }, {})).to.deep.equal({ ...BODY, attach: 'a=1&b=2' })
      for (const tradeInfo of [{ x: 'a=b&c' }, ['a=b&c']]) {
        expect(await buildPayParams({ ...BODY, total_amount: 12.5, trade_info: tradeInfo }, {})).to.deep.equal({ ...BODY, total_amount: 12.5, trade_info: tradeInfo })
      }
    })

    it('refuseReservedCharacters: the key or the value, but not attach\'s value', () => {
      expect(() => refuseReservedCharacters({ reason: 'ok', attach: '&=' })).to.not.throw()
      const inValue = (() => { try { refuseReservedCharacters({ reason: 'x=y' }) } catch (e) { return e as ParamError } })()
      expect(inValue).to.be.instanceOf(ParamError)
      expect(inValue!.field).to.equal('reason')
      expect(inValue!.message).to.not.match(/not a valid parameter name/)
      const inKey = (() => { try { refuseReservedCharacters({ 'x=y': 'ok' }) } catch (e) { return e as ParamError } })()
      expect(inKey!.field).to.equal('x=y')
      expect(inKey!.message).to.match(/not a valid parameter name/)
    })
  })
})
