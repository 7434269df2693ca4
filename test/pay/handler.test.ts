/**
 * The pay handler without a framework (src/core/pay/handler.ts, body.ts): what it reads of the
 * body, and what it records in the unsettled ledger, called directly with CoreRequests.
 */
import { expect } from 'chai'
import { tracingChannel } from 'node:diagnostics_channel'
import { Readable } from 'node:stream'
import { createPayHandler } from '../../src/core/pay/handler'
import type { CoreRequest } from '../../src/core/http'
import { DEFAULTS } from '../../src/kernel/defaults'
import { ConfigError, GatError } from '../../src/kernel/errors'
import { listUnsettled } from '../../src/core/settle/unsettled'
import { MemoryStore } from '../../src/stores/memory'
import type { GatClient, PayParams, PayRouteOptions } from '../../src/kernel/types'
import { APP_ID, recordingLogger, unusedClient } from '../helpers'

const ORDER = { outer_trade_no: 'O100001', reason: '午餐', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' }
const prepared = (_req: unknown, p: { outer_trade_no: string; asset_type?: unknown; asset_open_id?: unknown }) =>
  ({ outer_trade_no: p.outer_trade_no, reason: '午餐', asset_type: String(p.asset_type), asset_open_id: String(p.asset_open_id), buyer_open_id: 'b1', total_amount: '12.50' })

function request(body: string | undefined, type: string | undefined = 'application/json', extra: Partial<CoreRequest> = {}): CoreRequest {
  const headers: Record<string, string> = {}
  if (type !== undefined) headers['content-type'] = type
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body))
  return { method: 'POST', headers, rawBody: body === undefined ? undefined : Readable.from([Buffer.from(body)]), request: {}, ...extra }
}

function handler(options: Partial<PayRouteOptions> = {}, pay: GatClient['pay'] = async () => 'T2024000001') {
  const sent: PayParams[] = []
  const client = { ...unusedClient, pay: async (p: PayParams) => { sent.push(p); return pay(p) } } as GatClient
  const logger = recordingLogger()
  const handle = createPayHandler({ client, logger, notifyUrl: 'https://shop.example/gat/notify', preparePayment: prepared, ...options })
  return { handle, sent, logger }
}

const json = (response: { body: string }) => JSON.parse(response.body) as Record<string, unknown>

describe('the pay handler, called directly', () => {
  describe('JSON bodies (body-parser\'s strict rule)', () => {
    it('takes an object after leading whitespace', async () => {
      const { handle, sent } = handler()
      const res = await handle(request(` \t\r\n${JSON.stringify(ORDER)}`))
      expect(res.status).to.equal(200)
      expect(sent.map((p) => p.outer_trade_no)).to.deep.equal(['O100001'])
    })

    for (const [what, body] of [['a string', '"O100001"'], ['a number', '12'], ['null', 'null']] as const) {
      it(`refuses ${what} at the top level: 400 entity.parse.failed, nothing sent`, async () => {
        const { handle, sent } = handler()
        const res = await handle(request(body))
        expect({ status: res.status, code: json(res).code }).to.deep.equal({ status: 400, code: 'entity.parse.failed' })
        expect(json(res).msg).to.match(/does not start with \{ or \[/)
        expect(sent).to.deep.equal([])
      })
    }

    it('reads an array as JSON (not a parse error) and refuses it as no order: 400 naming outer_trade_no', async () => {
      const { handle } = handler()
      const res = await handle(request('[1]'))
      expect(res.status).to.equal(400)
      expect(json(res)).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
    })

    it('an empty or blank JSON body is no order: 400 naming outer_trade_no', async () => {
      const { handle } = handler()
      expect(json(await handle(request('')))).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
      const res = await handle(request(' \n '))
      expect(json(res)).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
    })

    it('a request that declares no body at all is no order either, and nothing is read', async () => {
      const { handle } = handler()
      const res = await handle({ method: 'POST', headers: {}, rawBody: Readable.from([Buffer.from(JSON.stringify(ORDER))]), request: {} })
      expect(json(res)).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
    })

    it('a body declared by its length or by chunked encoding, with no Content-Type, is refused: 415; Content-Length 0 declares none', async () => {
      const { handle, sent } = handler()
      const body = () => Readable.from([Buffer.from(JSON.stringify(ORDER))])
      for (const headers of [{ 'content-length': '80' }, { 'transfer-encoding': 'chunked' }]) {
        const res = await handle({ method: 'POST', headers, rawBody: body(), request: {} })
        expect({ status: res.status, code: json(res).code }, JSON.stringify(headers)).to.deep.equal({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
      }
      const empty = await handle({ method: 'POST', headers: { 'content-length': '0' }, rawBody: body(), request: {} })
      expect(json(empty)).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
      expect(sent).to.deep.equal([])
    })

    it('takes what a parser before it produced, without reading the stream', async () => {
      const { handle, sent } = handler()
      const res = await handle(request('not json', 'application/json', { parsedBody: ORDER }))
      expect(res.status).to.equal(200)
      expect(sent).to.have.length(1)
    })

    it('checks the type even of a body a parser already read: text/plain → 415', async () => {
      const { handle } = handler()
      const res = await handle({ method: 'POST', headers: { 'content-type': 'text/plain' }, parsedBody: ORDER, request: {} })
      expect({ status: res.status, code: json(res).code }).to.deep.equal({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
    })

    it(`a body over ${DEFAULTS.payBodyLimit} bytes → 413 entity.too.large`, async () => {
      const { handle } = handler()
      const res = await handle(request(JSON.stringify({ ...ORDER, pad: 'x'.repeat(DEFAULTS.payBodyLimit) })))
      expect({ status: res.status, code: json(res).code }).to.deep.equal({ status: 413, code: 'entity.too.large' })
    })
  })

  describe('form bodies (payFormBodies)', () => {
    const form = (pairs: number) => [new URLSearchParams(ORDER).toString(), ...Array.from({ length: pairs - 4 }, (_, i) => `k${i}=v`)].join('&')

    it(`takes ${DEFAULTS.payParameterLimit} fields (the limit is inclusive), as strings`, async () => {
      const { handle } = handler({ payFormBodies: true, extraPayParams: Array.from({ length: DEFAULTS.payParameterLimit - 4 }, (_, i) => `k${i}`) })
      const res = await handle(request(form(DEFAULTS.payParameterLimit), 'application/x-www-form-urlencoded'))
      expect(res.status).to.equal(200)
    })

    it(`refuses ${DEFAULTS.payParameterLimit + 1} fields: 413 parameters.too.many`, async () => {
      const { handle, sent } = handler({ payFormBodies: true })
      const res = await handle(request(form(DEFAULTS.payParameterLimit + 1), 'application/x-www-form-urlencoded'))
      expect({ status: res.status, code: json(res).code }).to.deep.equal({ status: 413, code: 'parameters.too.many' })
      expect(sent).to.deep.equal([])
    })

    it('still only JSON or a form: text/plain → 415, nothing sent', async () => {
      const { handle, sent } = handler({ payFormBodies: true })
      const res = await handle(request(new URLSearchParams(ORDER).toString(), 'text/plain'))
      expect({ status: res.status, code: json(res).code }).to.deep.equal({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
      expect(sent).to.deep.equal([])
    })

    it('an empty form is no order: 400 naming outer_trade_no', async () => {
      const { handle } = handler({ payFormBodies: true })
      const res = await handle(request('', 'application/x-www-form-urlencoded'))
      expect(json(res)).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
    })
  })

  it('a body that stops arriving → 408 with Connection: close', async function () {
    this.timeout(5000)
    const { handle } = handler()
    const stalled = new Readable({ read() {} })
    stalled.push('{"outer_trade_no":')
    const started = Date.now()
    const original = DEFAULTS.bodyTimeoutMs
    ;(DEFAULTS as { bodyTimeoutMs: number }).bodyTimeoutMs = 100
    try {
      const res = await handle({ method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '100' }, rawBody: stalled, request: {} })
      expect({ status: res.status, connection: res.headers.connection }).to.deep.equal({ status: 408, connection: 'close' })
      expect(Date.now() - started).to.be.below(2000)
    } finally {
      ;(DEFAULTS as { bodyTimeoutMs: number }).bodyTimeoutMs = original
      stalled.destroy()
    }
  })

  describe('the unsettled ledger', () => {
    const NOW = 1_700_000_000_000

    it('a pay that may have charged (a time-out) is recorded AMBIGUOUS, no trade number, due unsettledAfterMs later', async () => {
      const store = new MemoryStore()
      const timeout = new GatError({ kind: 'timeout', code: null, msg: 'no answer', status: 0, path: '/pay' })
      const { handle } = handler({ appId: APP_ID, store, unsettledAfterMs: 60_000, now: () => NOW }, async () => { throw timeout })
      const res = await handle(request(JSON.stringify(ORDER)))
      expect(res.status).to.equal(504)
      const records = await listUnsettled(store)
      expect(records.map((r) => ({ order: r.outerTradeNo, reason: r.reason, tradeNo: r.tradeNo, since: r.since, deadline: r.deadline, fen: r.totalFen })))
        .to.deep.equal([{ order: 'O100001', reason: 'AMBIGUOUS', tradeNo: null, since: NOW, deadline: NOW + 60_000, fen: 1250 }])
    })

    it('a pay refused outright (nothing charged) is not recorded', async () => {
      const store = new MemoryStore()
      const refused = new GatError({ kind: 'api', code: 1001, msg: 'nope', status: 200, path: '/pay' })
      const { handle } = handler({ appId: APP_ID, store }, async () => { throw refused })
      expect((await handle(request(JSON.stringify(ORDER)))).status).to.equal(502)
      expect(await listUnsettled(store)).to.deep.equal([])
    })

    it('without settling on the answer, a paid order waits for its notification: AWAITING_NOTIFICATION with its trade number', async () => {
      const store = new MemoryStore()
      const { handle } = handler({ appId: APP_ID, store, now: () => NOW })
      const res = await handle(request(JSON.stringify(ORDER)))
      expect(json(res)).to.deep.equal({ trade_no: 'T2024000001', outer_trade_no: 'O100001' })
      const records = await listUnsettled(store)
      expect(records.map((r) => [r.reason, r.tradeNo, r.deadline])).to.deep.equal([['AWAITING_NOTIFICATION', 'T2024000001', NOW + DEFAULTS.unsettledAfterMs]])
    })

    it('settled on the answer: answered settled: true, and nothing recorded', async () => {
      const store = new MemoryStore()
      const paid: string[] = []
      const { handle, logger } = handler({ appId: APP_ID, store, onPaid: (p: { outerTradeNo: string }) => { paid.push(p.outerTradeNo) } } as Partial<PayRouteOptions>)
      const res = await handle(request(JSON.stringify(ORDER)))
      expect(json(res)).to.deep.equal({ trade_no: 'T2024000001', outer_trade_no: 'O100001', settled: true })
      expect(paid).to.deep.equal(['O100001'])
      expect(await listUnsettled(store)).to.deep.equal([])
      expect(logger.reasons()).to.deep.equal([])
    })

    it('without an appId there is no settlement key: nothing is recorded, and nothing logged as a failure to record', async () => {
      for (const appId of [undefined, '']) {
        const store = new MemoryStore()
        const { handle, logger } = handler({ store, appId })
        expect((await handle(request(JSON.stringify(ORDER)))).status).to.equal(200)
        expect(await listUnsettled(store)).to.deep.equal([])
        expect(logger.reasons()).to.deep.equal([])
      }
    })

    it('a store that keeps no ledger: paid, time-out and all are answered as usual, nothing logged as a failure to record', async () => {
      const store = { leaseMs: 60_000, retentionMs: 60_000, claim: async () => ({ status: 'busy' as const }), complete: async () => true, release: async () => true }
      const { handle, logger } = handler({ appId: APP_ID, store })
      expect((await handle(request(JSON.stringify(ORDER)))).status).to.equal(200)
      expect(logger.reasons()).to.deep.equal([])
      const timeout = new GatError({ kind: 'timeout', code: null, msg: 'no answer', status: 0, path: '/pay' })
      const late = handler({}, async () => { throw timeout })
      expect((await late.handle(request(JSON.stringify(ORDER)))).status).to.equal(504)
    })

    it('a ledger slower than a tick but within the default storeTimeoutMs still records the pay', async () => {
      const store = new MemoryStore()
      const watch = store.watchUnsettled.bind(store)
      store.watchUnsettled = async (record) => { await new Promise((r) => setTimeout(r, 30)); return watch(record) }
      const { handle, logger } = handler({ appId: APP_ID, store })
      expect((await handle(request(JSON.stringify(ORDER)))).status).to.equal(200)
      expect((await listUnsettled(store)).map((r) => r.reason)).to.deep.equal(['AWAITING_NOTIFICATION'])
      expect(logger.reasons()).to.deep.equal([])
    })

    it('a pay whose amount cannot become a payment (a custom client that checks nothing) is answered, and logged STORE_FAILED with the order', async () => {
      const store = new MemoryStore()
      const { handle, logger } = handler({ appId: APP_ID, store, preparePayment: (req, p) => ({ ...prepared(req, p), total_amount: '1.005' }) })
      expect((await handle(request(JSON.stringify(ORDER)))).status).to.equal(200)
      expect(await listUnsettled(store)).to.deep.equal([])
      expect(logger.lines.filter((l) => l.level === 'error').map((l) => l.context)).to.deep.equal([
        { reason: 'STORE_FAILED', outerTradeNo: 'O100001', unsettledReason: 'AWAITING_NOTIFICATION', tradeNo: 'T2024000001' },
      ])
    })

    it('settling on the answer never fails the pay: a clock that throws is a fail told to observers (source pay), answered settled: false', async () => {
      const results: unknown[] = []
      const channel = tracingChannel('guanaitong:notify')
      const handlers = { start: (m: unknown) => { results.push((m as { source?: unknown }).source) }, end() {}, asyncStart() {}, error() {}, asyncEnd: (m: unknown) => { results.push((m as { result?: unknown }).result) } }
      channel.subscribe(handlers)
      try {
        let calls = 0
        const now = () => { if (calls++ === 0) throw new Error('clock broke'); return 1_700_000_000_000 }
        const { handle } = handler({ appId: APP_ID, store: new MemoryStore(), now, onPaid: () => undefined } as Partial<PayRouteOptions>)
        const res = await handle(request(JSON.stringify(ORDER)))
        expect({ status: res.status, settled: json(res).settled }).to.deep.equal({ status: 200, settled: false })
      } finally {
        channel.unsubscribe(handlers)
      }
      expect(results).to.deep.equal(['pay', { outcome: 'fail', reason: 'HANDLER_FAILED', outerTradeNo: 'O100001' }])
    })
  })

  it('onPaid without appId, or with an empty one, is refused when built, naming appId', () => {
    expect(() => handler({ onPaid: () => undefined } as Partial<PayRouteOptions>)).to.throw(ConfigError, /needs appId/)
    expect(() => handler({ appId: '', onPaid: () => undefined } as Partial<PayRouteOptions>)).to.throw(ConfigError, /needs appId/)
  })
})
