/**
 * verifyFields on its own: the reason, the log message and the context fields of each rejection,
 * which the HTTP tests see only as `fail` and a reason code.
 */
import { expect } from 'chai'
import { NotifyRejection } from '../../src/core/rejection'
import { verifyFields, type VerifyConfig } from '../../src/core/notify/verify'
import { signNotification } from '../../src/testing/sign-notification'
import type { Fields } from '../../src/kernel/types'
import { APP_ID, SECRET } from '../helpers'

const NOW_SEC = 1_700_000_000
const config: VerifyConfig = { appId: APP_ID, secrets: [SECRET], toleranceSec: 300, now: () => NOW_SEC * 1000, debug: false }

function fields(overrides: Record<string, string | undefined> = {}): Fields {
  return signNotification({
    appid: APP_ID, outer_trade_no: 'O1', total_amount: '1.15', trade_no: 'T1', timestamp: String(NOW_SEC), ...overrides,
  }, SECRET)
}

function rejection(input: Fields, cfg: VerifyConfig = config): NotifyRejection {
  try {
    verifyFields(input, cfg)
  } catch (err) {
    expect(err).to.be.instanceOf(NotifyRejection)
    return err as NotifyRejection
  }
  expect.fail('verifyFields accepted the notification')
}

describe('verifyFields', () => {
  it('accepts a valid notification with the amount in exact fen', () => {
    expect(verifyFields(fields(), config)).to.include({ outerTradeNo: 'O1', totalAmount: '1.15', totalFen: 115, timestamp: NOW_SEC })
  })

  for (const name of ['appid', 'outer_trade_no', 'total_amount', 'timestamp', 'sign']) {
    it(`names the missing or blank field: ${name}`, () => {
      for (const value of [undefined, ' ']) {
        const input = { ...fields() }
        if (value === undefined) delete input[name]
        else input[name] = value
        const r = rejection(input)
        expect(r.reason).to.equal('MISSING_FIELD')
        expect(r.context).to.deep.equal({ field: name })
      }
    })
  }

  it('logs the order number with an appid mismatch', () => {
    const r = rejection(fields({ appid: '99999999' }))
    expect(r.reason).to.equal('APPID_MISMATCH')
    expect(r.context).to.deep.equal({ outerTradeNo: 'O1' })
  })

  it('hints at milliseconds only for a 13-digit timestamp', () => {
    const detail = (timestamp: string) => {
      const r = rejection(fields({ timestamp }))
      expect(r.reason).to.equal('BAD_TIMESTAMP')
      return r.detail
    }
    expect(detail('1700000000000')).to.contain('milliseconds')
    expect(detail('abc')).to.equal('timestamp "abc" is not Unix seconds')
    for (const notMs of ['x700000000000', '170000000000x', 'abcdefghijklm', '17000000000', '170000000000000']) {
      expect(detail(notMs), notMs).to.not.contain('milliseconds')
    }
  })

  it('says which way the clock is off and logs the skew in seconds', () => {
    const future = rejection(fields({ timestamp: String(NOW_SEC + 301) }))
    expect(future.reason).to.equal('STALE_TIMESTAMP')
    expect(future.detail).to.contain('301 s in the future')
    expect(future.context).to.deep.equal({ skewSec: 301 })
    const old = rejection(fields({ timestamp: String(NOW_SEC - 301) }))
    expect(old.detail).to.contain('301 s old')
    expect(old.context).to.deep.equal({ skewSec: -301 })
  })

  it('logs the order number with a bad signature, and the masked signed string only with debug', () => {
    const forged = { ...fields(), total_amount: '999.00' }
    const quiet = rejection(forged)
    expect(quiet.reason).to.equal('BAD_SIGN')
    expect(quiet.context).to.deep.equal({ outerTradeNo: 'O1' })
    const loud = rejection(forged, { ...config, debug: true })
    expect(loud.context.outerTradeNo).to.equal('O1')
    expect(loud.context.canonical).to.be.a('string').and.contain('appsecret=***').and.contain('total_amount=999.00')
    expect(String(loud.context.canonical)).to.not.contain(SECRET)
  })

  it('logs the key that holds a reserved character, as field, for a key and for a value', () => {
    for (const input of [{ ...fields(), 'a&b': 'x' }, fields({ attach: 'x=1' })]) {
      const r = rejection(input)
      expect(r.reason).to.equal('RESERVED_CHARACTER')
      expect(r.context).to.deep.equal({ field: Object.keys(input).find((k) => k === 'a&b' || k === 'attach') })
    }
  })

  it('logs the order number and the algorithm of a signature notifySignTypes does not accept', () => {
    const r = rejection(signNotification({ ...fields(), sign: undefined }, SECRET, 'sha256'), { ...config, algorithms: ['sha512'] })
    expect(r.reason).to.equal('BAD_SIGN')
    expect(r.context).to.deep.equal({ outerTradeNo: 'O1', signType: 'sha256' })
  })

  it('logs the order number with a bad amount', () => {
    const r = rejection(fields({ total_amount: '0.00' }))
    expect(r.reason).to.equal('BAD_AMOUNT')
    expect(r.context).to.deep.equal({ outerTradeNo: 'O1' })
  })
})
