/**
 * payRejection on its own (src/core/pay/answers.ts): which reason, status, log level and body each thrown
 * value gets, and above all whether the answer tells the cashier page the employee may have been
 * charged. The same answers through the pay route, for every transport fault, are in
 * outcomes.test.ts.
 */
import { expect } from 'chai'
import { GatError, GuanaitongError, OUTER_TRADE_NO_EXISTS_CODE, ParamError, type GatErrorDetails } from '../../src/kernel/errors'
import { payRejection, PayRejection } from '../../src/core/pay/answers'

const gat = (d: Partial<GatErrorDetails>) => new GatError({ kind: 'api', code: 1, msg: 'refused', status: 200, path: '/pay', ...d })
const summary = (r: PayRejection) => ({ reason: r.reason, status: r.status, level: r.level, mayHaveCharged: r.mayHaveCharged })

describe('payRejection', () => {
  it('a ParamError, in either phase: INVALID_PARAM, 400, warn, naming the field', () => {
    for (const phase of ['prepare', 'send'] as const) {
      const err = new ParamError('total_amount', 'must be positive')
      const r = payRejection(err, phase, 'O1')
      expect(r).to.be.instanceOf(PayRejection).and.instanceOf(GuanaitongError)
      expect(r.name, 'as logs and stack traces show it').to.equal('PayRejection')
      expect(summary(r)).to.deep.equal({ reason: 'INVALID_PARAM', status: 400, level: 'warn', mayHaveCharged: false })
      expect(r.code).to.equal('INVALID_PARAM')
      expect(r.body).to.deep.equal({ code: 'INVALID_PARAM', msg: err.msg, field: 'total_amount' })
      expect(r.cause).to.equal(err)
      expect(r.context).to.deep.equal({ reason: 'INVALID_PARAM', ...r.body })
    }
  })

  describe('prepare phase (reading the body, preparePayment)', () => {
    it('a failure without a 4xx of its own is PREPARE_FAILED, 500, error, and never shows the shop\'s message', () => {
      const thrown: unknown[] = [
        new Error('SELECT failed: password=hunter2'), undefined, null, 'text', Object.assign(new Error('x'), { status: 500 }),
        Object.assign(new Error('x'), { status: 399 }), Object.assign(new Error('x'), { status: 401.5 }),
        Object.assign(new Error('x'), { status: '401' }), gat({ status: 401 }),
      ]
      for (const err of thrown) {
        const r = payRejection(err, 'prepare', 'O1')
        expect(summary(r), String(err)).to.deep.equal({ reason: 'PREPARE_FAILED', status: 500, level: 'error', mayHaveCharged: false })
        expect(r.body.code, String(err)).to.equal('INTERNAL')
        expect(JSON.stringify(r.body)).to.not.contain('hunter2')
        expect(r.body).to.not.have.property('outer_trade_no')
        expect(r.cause).to.equal(err)
      }
    })

    it('a 4xx the error asks for is answered with it: BAD_REQUEST, warn, the error\'s own code or type', () => {
      const cases: [unknown, number, string | number][] = [
        [Object.assign(new Error('entity too large'), { status: 413, type: 'entity.too.large' }), 413, 'entity.too.large'],
        // The package's own 4xx (the adapter refusing a content type): its code, its status from ERROR_STATUS.
        [new GuanaitongError('the pay route takes JSON bodies', 'UNSUPPORTED_MEDIA_TYPE'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
        // A shop's own error with a string code (GuanaitongError takes only the package's codes).
        [Object.assign(new Error('no such order'), { status: 404, code: 'ORDER_GONE' }), 404, 'ORDER_GONE'],
        // …or a numeric one, kept as the number the shop's cashier page knows.
        [Object.assign(new Error('already paid'), { status: 409, code: 40901 }), 409, 40901],
        [Object.assign(new Error('first of the range'), { status: 400 }), 400, ''],
        [Object.assign(new Error('last of the range'), { status: 499 }), 499, ''],
      ]
      for (const [err, status, code] of cases) {
        const r = payRejection(err, 'prepare', 'O1')
        expect(summary(r)).to.deep.equal({ reason: 'BAD_REQUEST', status, level: 'warn', mayHaveCharged: false })
        expect(r.status).to.equal(status)
        // Meant for a cashier page: the package's own prefix is left out.
        expect(r.body.msg).to.equal((err as Error).message.replace(/^\[express-guanaitong\] /, ''))
        if (code) expect(r.body.code).to.equal(code)
        else expect(r.body.code).to.be.a('string').and.not.equal('')
      }
    })
  })

  describe('send phase (from the call of client.pay on)', () => {
    it('what is not a GatError came from a broken custom client: OUTCOME_UNKNOWN, 502, may have charged', () => {
      for (const err of [new Error('boom'), undefined, Object.assign(new Error('x'), { status: 401 })]) {
        const r = payRejection(err, 'send', 'O1')
        expect(summary(r)).to.deep.equal({ reason: 'OUTCOME_UNKNOWN', status: 502, level: 'error', mayHaveCharged: true })
        expect(r.body).to.include({ code: 'UNKNOWN', outer_trade_no: 'O1', ambiguous: true })
        expect(r.body.msg, 'tells the cashier page to check before paying again').to.match(/may have happened/)
        expect(r.context).to.deep.equal({ reason: 'OUTCOME_UNKNOWN', ...r.body })
      }
    })

    it('the order number is echoed only when it is a string', () => {
      expect(payRejection(new Error('x'), 'send', 42).body.outer_trade_no).to.equal(undefined)
      expect(payRejection(gat({}), 'send', ['O1']).body.outer_trade_no).to.equal(undefined)
      expect(payRejection(gat({}), 'send', 'O1').body.outer_trade_no).to.equal('O1')
    })

    it('a GatError: by whether it was sent and how it failed', () => {
      const cases: [string, GatError, ReturnType<typeof summary>, string | number][] = [
        ['not sent (no connection)', gat({ kind: 'network', code: null, status: 0, sent: false }),
          { reason: 'NOT_SENT', status: 503, level: 'error', mayHaveCharged: false }, 'UNAVAILABLE'],
        ['no token from the cache', gat({ kind: 'token-cache', code: null, status: 0 }),
          { reason: 'NOT_SENT', status: 503, level: 'error', mayHaveCharged: false }, 'UNAVAILABLE'],
        ['timed out', gat({ kind: 'timeout', code: null, status: 0 }),
          { reason: 'TIMEOUT', status: 504, level: 'error', mayHaveCharged: true }, 'GAT_TIMEOUT'],
        ['broken connection', gat({ kind: 'network', code: null, status: 0 }),
          { reason: 'OUTCOME_UNKNOWN', status: 502, level: 'error', mayHaveCharged: true }, 'GAT_NETWORK'],
        ['a 5xx', gat({ kind: 'http', code: null, status: 503 }),
          { reason: 'OUTCOME_UNKNOWN', status: 502, level: 'error', mayHaveCharged: true }, 'GAT_HTTP'],
        ['order number used before', gat({ code: OUTER_TRADE_NO_EXISTS_CODE }),
          { reason: 'OUTER_TRADE_NO_EXISTS', status: 409, level: 'warn', mayHaveCharged: false }, OUTER_TRADE_NO_EXISTS_CODE],
        ['refused', gat({ code: 1001220001, msg: '余额不足', traceId: 't-1' }),
          { reason: 'REFUSED', status: 502, level: 'error', mayHaveCharged: false }, 1001220001],
        ['the used-before code on an answer that is not api', gat({ kind: 'http', code: OUTER_TRADE_NO_EXISTS_CODE, status: 500, ambiguous: false }),
          { reason: 'REFUSED', status: 502, level: 'error', mayHaveCharged: false }, OUTER_TRADE_NO_EXISTS_CODE],
      ]
      for (const [what, err, expected, code] of cases) {
        const r = payRejection(err, 'send', 'O1')
        expect(summary(r), what).to.deep.equal(expected)
        expect(r.code, what).to.equal(expected.reason)
        expect(r.body, what).to.deep.equal({
          code, msg: expected.reason === 'NOT_SENT' ? r.body.msg : err.msg, outer_trade_no: 'O1', trace_id: err.traceId, ambiguous: expected.mayHaveCharged,
        })
        expect(r.context, what).to.deep.equal({
          reason: expected.reason, ...r.body, kind: err.kind, path: '/pay', sent: err.sent, upstreamStatus: err.status,
        })
      }
    })

    it('a pay that was not sent says nothing was charged, not Guanaitong\'s message', () => {
      const r = payRejection(gat({ kind: 'network', code: null, msg: 'ECONNREFUSED 10.0.0.1', status: 0, sent: false }), 'send', 'O1')
      expect(r.body.msg).to.not.contain('ECONNREFUSED')
      expect(r.body.msg).to.match(/nothing was charged/)
    })
  })
})
