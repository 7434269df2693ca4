import { expect } from 'chai'
import { ParamError } from '../../src/kernel/errors'
import { checkString, validatePayParams } from '../../src/kernel/pay-rules'

export const VALID_PAY = {
  buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
  reason: '午餐支付-金额:100.01积分',
  total_amount: '100.01',
  outer_trade_no: '1000000001',
  asset_type: '1',
  asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
}

function rejects(params: unknown, field: string, rule?: RegExp): ParamError {
  let caught: unknown
  try {
    validatePayParams(params)
  } catch (err) {
    caught = err
  }
  expect(caught, `expected a ParamError for ${field}`).to.be.instanceOf(ParamError)
  const e = caught as ParamError
  expect(e.field).to.equal(field)
  expect(e.code).to.equal('INVALID_PARAM')
  if (rule) expect(e.msg).to.match(rule)
  return e
}

describe('client/validate: validatePayParams', () => {
  it('accepts the seed example and returns flat strings', () => {
    const out = validatePayParams({ ...VALID_PAY, attach: '测试', notify_url: 'https://shop.example/notify' })
    expect(out).to.deep.equal({ ...VALID_PAY, attach: '测试', notify_url: 'https://shop.example/notify' })
    for (const v of Object.values(out)) expect(v).to.be.a('string')
  })

  it('sends "100.1" as "100.10" and a numeric asset_type as a string', () => {
    const out = validatePayParams({ ...VALID_PAY, total_amount: '100.1', asset_type: 4 })
    expect(out.total_amount).to.equal('100.10')
    expect(out.asset_type).to.equal('4')
  })

  for (const amount of ['0', '0.00', '0.001', '1e2', '-1', '100000000.00', ' 1.00', '1,00', {}, true]) {
    it(`rejects total_amount ${typeof amount === 'string' ? JSON.stringify(amount) : String(amount)}`, () => {
      rejects({ ...VALID_PAY, total_amount: amount }, 'total_amount', /0\.01 and 99999999\.99/)
    })
  }

  // Money is decimal strings: a JS number is a binary float, refused whatever it looks like.
  for (const amount of [1e2, 100, 100.1, 0.1 + 0.2, 99999999.99, 0, 0.001, NaN, -1, 100000000, 10n]) {
    it(`rejects the number ${String(amount)} as total_amount, saying to pass a decimal string`, () => {
      rejects({ ...VALID_PAY, total_amount: amount }, 'total_amount', /decimal string .* not a JS number/)
    })
  }

  it('accepts the amount bounds 0.01 and 99999999.99', () => {
    expect(validatePayParams({ ...VALID_PAY, total_amount: '0.01' }).total_amount).to.equal('0.01')
    expect(validatePayParams({ ...VALID_PAY, total_amount: '99999999.99' }).total_amount).to.equal('99999999.99')
  })

  it('requires every mandatory field, naming it', () => {
    for (const field of ['buyer_open_id', 'reason', 'total_amount', 'outer_trade_no', 'asset_type', 'asset_open_id']) {
      const params: Record<string, unknown> = { ...VALID_PAY }
      delete params[field]
      rejects(params, field, /required/)
    }
  })

  it('refuses non-string values for required strings (no object, no number)', () => {
    rejects({ ...VALID_PAY, buyer_open_id: { id: 'x' } }, 'buyer_open_id', /must be a string, got an object/)
    rejects({ ...VALID_PAY, outer_trade_no: 1000000001 }, 'outer_trade_no', /must be a string, got a number/)
    rejects({ ...VALID_PAY, reason: ['a'] }, 'reason', /must be a string, got an array/)
  })

  it('checks lengths in characters (code points), at each boundary', () => {
    const emoji = '😀' // two UTF-16 units, one character
    expect(validatePayParams({ ...VALID_PAY, buyer_open_id: emoji.repeat(32) }).buyer_open_id).to.have.length(64)
    rejects({ ...VALID_PAY, buyer_open_id: 'a'.repeat(33) }, 'buyer_open_id', /at most 32 characters \(got 33\)/)
    rejects({ ...VALID_PAY, asset_open_id: 'a'.repeat(33) }, 'asset_open_id', /at most 32/)
    validatePayParams({ ...VALID_PAY, reason: '餐'.repeat(254) })
    rejects({ ...VALID_PAY, reason: '餐'.repeat(255) }, 'reason', /at most 254/)
    rejects({ ...VALID_PAY, reason: '' }, 'reason', /empty or blank/)
    rejects({ ...VALID_PAY, reason: '   ' }, 'reason', /empty or blank/)
    validatePayParams({ ...VALID_PAY, outer_trade_no: '12' })
    validatePayParams({ ...VALID_PAY, outer_trade_no: 'x'.repeat(22) })
    rejects({ ...VALID_PAY, outer_trade_no: '1' }, 'outer_trade_no', /2–22 characters \(got 1\)/)
    rejects({ ...VALID_PAY, outer_trade_no: 'x'.repeat(23) }, 'outer_trade_no', /2–22/)
  })

  it('checks the optional notify_url (1–254) and attach (1–100) only when given', () => {
    expect(validatePayParams({ ...VALID_PAY, notify_url: undefined, attach: null })).to.deep.equal(VALID_PAY)
    validatePayParams({ ...VALID_PAY, attach: '附'.repeat(100), notify_url: 'h'.repeat(254) })
    rejects({ ...VALID_PAY, attach: '附'.repeat(101) }, 'attach', /at most 100/)
    rejects({ ...VALID_PAY, attach: '' }, 'attach', /empty/)
    rejects({ ...VALID_PAY, notify_url: 'h'.repeat(255) }, 'notify_url', /at most 254/)
    rejects({ ...VALID_PAY, notify_url: 42 }, 'notify_url', /must be a string/)
  })

  it('accepts asset_type "1"/"4"/1/4 only', () => {
    for (const t of ['2', 2, '01', 'points', '', {}]) rejects({ ...VALID_PAY, asset_type: t }, 'asset_type', /"1" \(points\) or "4" \(quota\)/)
  })

  it('passes unknown parameters through: strings as is, structures as JSON, scalars stringified, null dropped', () => {
    const out = validatePayParams({
      ...VALID_PAY,
      trade_info: { thirdTradeNo: '100001' },
      tags: ['a', 1],
      raw_json: '{"k":"v"}',
      count: 3,
      flag: false,
      skipped: null,
      missing: undefined,
      empty: '',
    })
    expect(out.trade_info).to.equal('{"thirdTradeNo":"100001"}')
    expect(out.tags).to.equal('["a",1]')
    expect(out.raw_json).to.equal('{"k":"v"}')
    expect(out.count).to.equal('3')
    expect(out.flag).to.equal('false')
    expect(out).to.not.have.any.keys('skipped', 'missing', 'empty')
  })

  it('refuses extras that cannot be sent faithfully, and public parameters', () => {
    rejects({ ...VALID_PAY, when: new Date(0) }, 'when', /plain object or array/)
    rejects({ ...VALID_PAY, n: Infinity }, 'n', /finite/)
    const circular: Record<string, unknown> = {}
    circular.self = circular
    rejects({ ...VALID_PAY, info: circular }, 'info', /JSON/)
    rejects({ ...VALID_PAY, sign: 'abc' }, 'sign', /public parameter/)
    rejects({ ...VALID_PAY, access_token: 'abc' }, 'access_token', /public parameter/)
    rejects({ ...VALID_PAY, reason: 'bad \ud800 surrogate' }, 'reason', /surrogate/)
    rejects(JSON.parse(`{"__proto__": "x", "buyer_open_id": "b", "reason": "r", "total_amount": "1", "outer_trade_no": "12", "asset_type": "1", "asset_open_id": "a"}`), '__proto__')
  })

  it('refuses a params value that is not a plain object', () => {
    for (const p of [null, undefined, 'x', [VALID_PAY]]) rejects(p, 'params')
  })
})

describe('client/validate: no raw & or = reaches Guanaitong (the re-split forgery, issue 9)', () => {
  it('percent-encodes %, & and = in attach, and nothing else', () => {
    const attach = 'x&outer_trade_no=VICTIM&total_amount=8888.00 100% 测试'
    const out = validatePayParams({ ...VALID_PAY, attach })
    expect(out.attach).to.equal('x%26outer_trade_no%3DVICTIM%26total_amount%3D8888.00 100%25 测试')
  })

  it('counts attach\'s 100 characters after encoding', () => {
    expect(validatePayParams({ ...VALID_PAY, attach: `${'a'.repeat(97)}&` }).attach).to.have.length(100)
    rejects({ ...VALID_PAY, attach: `${'a'.repeat(98)}&` }, 'attach', /at most 100 characters once .* percent-encoded \(got 101\)/)
  })

  for (const field of ['buyer_open_id', 'reason', 'outer_trade_no', 'asset_open_id', 'notify_url']) {
    for (const c of ['&', '=']) {
      it(`refuses ${JSON.stringify(c)} in ${field}, naming it`, () => {
        const value = field === 'notify_url' ? `https://shop.example/n?a${c}b` : `ab${c}cd`
        rejects({ ...VALID_PAY, [field]: value }, field, /must not contain "&" or "="/)
      })
    }
  }

  it('refuses & or = in an extra parameter\'s value (also inside JSON) and in a parameter name', () => {
    rejects({ ...VALID_PAY, trade_info: { thirdTradeNo: 'a&b' } }, 'trade_info', /must not contain "&" or "="/)
    rejects({ ...VALID_PAY, memo: 'k=v' }, 'memo', /must not contain/)
    rejects({ ...VALID_PAY, 'a=b': 'x' }, 'a=b', /not a valid parameter name/)
  })
})

describe('client/validate: checkString', () => {
  it('returns the value within bounds and names the field otherwise', () => {
    expect(checkString('f', 'ab', 2, 3)).to.equal('ab')
    expect(() => checkString('f', 'abcd', 2, 3)).to.throw(ParamError, 'f must be 2–3 characters (got 4)')
    expect(() => checkString('g', undefined, 1, 3)).to.throw(ParamError, 'g is required')
  })
})
