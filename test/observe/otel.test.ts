/**
 * Spans and metrics with the OpenTelemetry SDK registered globally, as an app does: names,
 * attributes, parent/child links, ERROR on every reject reason, and Guanaitong's trace id.
 */
import { SpanKind, SpanStatusCode, metrics, trace } from '@opentelemetry/api'
import { expect } from 'chai'
import request from 'supertest'
import type { Server } from 'node:http'
import { createClient } from '../../src/client'
import { guanaitong } from '../../src/adapters/express/router'
import { createSettlement, type Settlement } from '../../src/core/settle/settle'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import type { GuanaitongOptions, Notification, NotifyStore, RejectReason, TransactionalStore } from '../../src/kernel/types'
import { APP_ID, EXPRESS_VERSIONS, SECRET, formBody, paidFields, recordingLogger, sleep, unusedClient } from '../helpers'
import { count, parentOf, points, registerMeterProvider, registerSdk, spansNamed, type Sdk } from './otel-sdk'

const FORM = 'application/x-www-form-urlencoded'
const express = EXPRESS_VERSIONS[0].express

function notifyApp(expressFactory: typeof express, options: Partial<GuanaitongOptions> = {}) {
  const app = expressFactory()
  app.use('/gat', guanaitong({
    appId: APP_ID, appSecret: SECRET, client: unusedClient, payPath: false, logger: recordingLogger(),
    onPaid: () => {},
    ...options,
  }))
  return app
}

const post = (app: ReturnType<typeof notifyApp>, body: string, type = FORM, headers: Record<string, string> = {}) =>
  request(app).post('/gat/notify').set('content-type', type).set(headers).send(body)

/** A store whose claim always answers `busy`, as when another instance holds the payment. */
const busyStore: NotifyStore = {
  leaseMs: 60_000, retentionMs: 60_000,
  claim: async () => ({ status: 'busy' }),
  complete: async () => true,
  release: async () => true,
}
const brokenStore: NotifyStore = { ...busyStore, claim: async () => { throw new Error('redis gone') } }

/** One request per reject reason; the Record makes the compiler insist on every reason. */
const REJECTIONS: Record<RejectReason, { body: () => string; type?: string; headers?: Record<string, string>; options?: Partial<GuanaitongOptions> }> = {
  BAD_BODY: { body: () => 'appid=%zz' },
  BODY_TOO_LARGE: { body: () => formBody(paidFields()), options: { bodyLimit: 20 } },
  // Announces more than it sends: the rest never comes.
  BODY_TIMEOUT: { body: () => formBody(paidFields()), headers: { 'content-length': '4000' }, options: { bodyTimeoutMs: 50 } },
  UNSUPPORTED_MEDIA_TYPE: { body: () => JSON.stringify(paidFields()), type: 'application/json' },
  DUPLICATE_KEY: { body: () => `${formBody(paidFields())}&appid=${APP_ID}` },
  NESTED_KEY: { body: () => `${formBody(paidFields())}&a[b]=1` },
  TOO_MANY_PARAMETERS: { body: () => formBody(paidFields()), options: { parameterLimit: 3 } },
  MISSING_FIELD: { body: () => formBody(paidFields({ total_amount: undefined })) },
  BAD_SIGN: { body: () => formBody({ ...paidFields(), sign: '0'.repeat(40) }) },
  BAD_TIMESTAMP: { body: () => formBody(paidFields({ timestamp: String(Date.now()) })) },
  STALE_TIMESTAMP: { body: () => formBody(paidFields({ timestamp: String(Math.floor(Date.now() / 1000) - 3600) })) },
  APPID_MISMATCH: { body: () => formBody(paidFields({ appid: '99999999' })) },
  BAD_AMOUNT: { body: () => formBody(paidFields({ total_amount: '1.234' })) },
  IN_PROGRESS: { body: () => formBody(paidFields()), options: { store: busyStore } },
  STORE_FAILED: { body: () => formBody(paidFields()), options: { store: brokenStore } },
  HANDLER_FAILED: { body: () => formBody(paidFields()), options: { onPaid: () => { throw new Error('db down') } } },
  HANDLER_TIMEOUT: { body: () => formBody(paidFields()), options: { handlerTimeoutMs: 20, onPaid: () => sleep(200) } },
  ORDER_MISMATCH: { body: () => formBody(paidFields()), options: { findOrder: () => null } },
  RESERVED_CHARACTER: { body: () => formBody(paidFields({ attach: 'x&total_amount=1.00' })) },
  RESERVED_NAME: { body: () => formBody({ ...paidFields(), appsecret: 'guess' }) },
}

describe('observability: OpenTelemetry spans and metrics (SDK registered globally)', () => {
  let sdk: Sdk
  before(() => { sdk = registerSdk() })
  after(async () => { await sdk.unregister() })
  beforeEach(() => sdk.spans.reset())

  for (const { name, express: expressFactory } of EXPRESS_VERSIONS) {
    it(`a payment (${name}): guanaitong.notify with store and handler children; the shop's own span in onPaid nests under it`, async () => {
      const shopTracer = trace.getTracer('the-shop')
      const fields = paidFields()
      const app = notifyApp(expressFactory, {
        onPaid: async () => {
          await sleep(1)
          shopTracer.startActiveSpan('shop.markPaid', (span) => span.end())
        },
      })
      const res = await post(app, formBody(fields))
      expect(res.text).to.equal('success')

      const spans = sdk.spans.getFinishedSpans()
      const [notify] = spansNamed(spans, 'guanaitong.notify')
      expect(notify, 'guanaitong.notify').to.exist
      expect(notify.instrumentationScope.name).to.equal('express-guanaitong')
      expect(notify.attributes).to.deep.include({
        'guanaitong.outer_trade_no': fields.outer_trade_no,
        'guanaitong.outcome': 'success',
        'guanaitong.reason': 'HANDLED',
        'guanaitong.source': 'notify',
      })
      expect(notify.status.code).to.not.equal(SpanStatusCode.ERROR)
      const notifyId = notify.spanContext().spanId
      const traceId = notify.spanContext().traceId
      const child = (spanName: string) => {
        const [span] = spansNamed(spans, spanName)
        expect(span, spanName).to.exist
        expect(span.spanContext().traceId, `${spanName} trace`).to.equal(traceId)
        return span
      }
      for (const step of ['guanaitong.store.claim', 'guanaitong.handler', 'guanaitong.store.complete']) {
        expect(parentOf(child(step)), `${step} parent`).to.equal(notifyId)
      }
      const handler = child('guanaitong.handler')
      expect(handler.attributes['guanaitong.source']).to.equal('notify')
      expect(parentOf(child('shop.markPaid')), 'the shop span is inside the handler span').to.equal(handler.spanContext().spanId)
    })
  }

  it('a duplicate is answered success with reason DUPLICATE, and runs no handler span', async () => {
    const app = notifyApp(express)
    const fields = paidFields()
    await post(app, formBody(fields)).expect(200, 'success')
    sdk.spans.reset()
    await post(app, formBody(fields)).expect(200, 'success')
    const spans = sdk.spans.getFinishedSpans()
    expect(spansNamed(spans, 'guanaitong.notify')[0].attributes).to.deep.include({ 'guanaitong.outcome': 'success', 'guanaitong.reason': 'DUPLICATE' })
    expect(spansNamed(spans, 'guanaitong.handler')).to.have.length(0)
  })

  for (const [reason, rejection] of Object.entries(REJECTIONS)) {
    it(`${reason}: guanaitong.notify has status ERROR, outcome fail and the reason; the counter counts it`, async () => {
      const before = count(await sdk.collect(), 'guanaitong.notifications', { 'guanaitong.reason': reason })
      const app = notifyApp(express, rejection.options)
      const res = await post(app, rejection.body(), rejection.type, rejection.headers)
      expect(res.text).to.equal('fail')
      const notify = spansNamed(sdk.spans.getFinishedSpans(), 'guanaitong.notify')
      expect(notify).to.have.length(1)
      expect(notify[0].status.code).to.equal(SpanStatusCode.ERROR)
      expect(notify[0].attributes).to.deep.include({ 'guanaitong.outcome': 'fail', 'guanaitong.reason': reason, 'guanaitong.source': 'notify' })
      const data = await sdk.collect()
      expect(count(data, 'guanaitong.notifications', { 'guanaitong.outcome': 'fail', 'guanaitong.reason': reason, 'guanaitong.source': 'notify' }))
        .to.equal(before + 1)
    })
  }

  it('a handler that throws: guanaitong.handler is ERROR with the exception recorded, and the claim release has its own span', async () => {
    const app = notifyApp(express, { onPaid: () => { throw new Error('db down') } })
    await post(app, formBody(paidFields())).expect('fail')
    const spans = sdk.spans.getFinishedSpans()
    const [handler] = spansNamed(spans, 'guanaitong.handler')
    expect(handler.status).to.deep.include({ code: SpanStatusCode.ERROR, message: 'db down' })
    expect(handler.events.map((e) => e.name)).to.include('exception')
    const [notify] = spansNamed(spans, 'guanaitong.notify')
    expect(parentOf(spansNamed(spans, 'guanaitong.store.release')[0])).to.equal(notify.spanContext().spanId)
  })

  it('no span carries the secret: a debug sign dump, a handler error, API failures', async () => {
    const secret = 'Sekrit-otel-4b1d-never-on-a-span'
    const app = notifyApp(express, { appSecret: secret, debug: true, onPaid: () => { throw new Error('db down') } })
    await post(app, formBody({ ...paidFields({}, secret), sign: '0'.repeat(40) })).expect('fail')
    await post(app, formBody(paidFields({}, secret))).expect('fail')
    const sandbox = createSandbox({ appId: APP_ID, appSecret: secret })
    await sandbox.start()
    try {
      const gat = createClient({ appId: APP_ID, appSecret: secret, baseUrl: sandbox.url, logger: recordingLogger(), timeoutMs: 2000 })
      await gat.getToken()
      sandbox.respond5xx({ path: '/platformDealer/employee/pay' })
      await gat.request('/platformDealer/employee/pay', {}).catch(() => {})
    } finally {
      await sandbox.close()
    }
    const spans = sdk.spans.getFinishedSpans()
    expect(spans.map((s) => s.name)).to.include.members(['guanaitong.notify', 'guanaitong.handler', 'guanaitong.api', 'guanaitong.token.refresh'])
    const everything = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })))
    expect(everything).to.contain('db down')
    expect(everything).to.not.contain(secret)
  })

  it('metrics: handler duration in seconds by outcome, settlements in flight while a handler runs', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    let started!: () => void
    const running = new Promise<void>((resolve) => { started = resolve })
    const app = notifyApp(express, { onPaid: async () => { started(); await gate } })
    const active = async () => count(await sdk.collect(), 'guanaitong.settlements.active', { 'guanaitong.source': 'notify' })
    const durations = async () => points(await sdk.collect(), 'guanaitong.handler.duration', { 'guanaitong.outcome': 'success' })
    // Handlers of earlier tests (HANDLER_TIMEOUT's outlives its answer) must all have settled.
    for (let i = 0; i < 100 && (await active()) !== 0; i++) await sleep(20)
    const idle = await active()
    expect(idle).to.equal(0)
    const before = (await durations()).reduce((n, p) => n + (p.value as { count: number }).count, 0)

    const answer = post(app, formBody(paidFields())).then((res) => res.text)
    await running
    expect(await active()).to.equal(idle + 1)
    await sleep(30)
    release()
    expect(await answer).to.equal('success')
    expect(await active()).to.equal(idle)
    const after = await durations()
    expect(after.reduce((n, p) => n + (p.value as { count: number }).count, 0)).to.equal(before + 1)
    const [metric] = (await sdk.collect()).filter((m) => m.descriptor.name === 'guanaitong.handler.duration')
    expect(metric.descriptor.unit).to.equal('s')
    // At least the 30 ms it was held, in seconds (a value in ms would be ≥ 30).
    const max = Math.max(...after.map((p) => (p.value as { max?: number }).max ?? 0))
    expect(max).to.be.within(0.025, 5)
  })

  it('the pay answer settles: guanaitong.notify with source pay over claim, handler (the shop span inside) and complete; the notification is then a DUPLICATE', async () => {
    const sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET, timeScale: 0.001 })
    await sandbox.start()
    const app = express()
    const server: Server = app.listen(0, '127.0.0.1')
    await new Promise((ready) => server.once('listening', ready))
    const shopUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const shopTracer = trace.getTracer('the-shop')
    try {
      // What an HTTP instrumentation would make: a server span around each request.
      app.use((req, res, next) => shopTracer.startActiveSpan(`shop.http ${req.path}`, (span) => {
        res.once('finish', () => span.end())
        next()
      }))
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, baseUrl: sandbox.url, notifyUrl: `${shopUrl}/gat/notify`, logger: recordingLogger(),
        preparePayment: (_req, params) => ({ ...params, buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', total_amount: '9.90' }),
        onPaid: (_p, _req, ctx) => { shopTracer.startActiveSpan(`shop.markPaid.${ctx.source}`, (span) => span.end()) },
      }))
      const outer = `PS${Date.now() % 1e9}`
      const res = await request(shopUrl).post('/gat/pay').send({ outer_trade_no: outer, reason: '午餐', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' })
      expect(res.body).to.include({ settled: true })
      await sandbox.waitForAcknowledged(outer)
      const spans = sdk.spans.getFinishedSpans()
      const notifies = spansNamed(spans, 'guanaitong.notify')
      const seen = notifies.map((s) => [s.attributes['guanaitong.source'], s.attributes['guanaitong.reason'], s.attributes['guanaitong.outer_trade_no']])
      expect(seen[0]).to.deep.equal(['pay', 'HANDLED', outer])
      // A notification that arrives while the pay's settlement holds the key is IN_PROGRESS, and retried.
      expect(seen.slice(1, -1).every(([, reason]) => reason === 'IN_PROGRESS')).to.equal(true)
      expect(seen.at(-1)).to.deep.equal(['notify', 'DUPLICATE', outer])
      const pay = notifies[0]
      const [handler] = spansNamed(spans, 'guanaitong.handler')
      expect(handler.attributes['guanaitong.source']).to.equal('pay')
      for (const child of [handler, ...spansNamed(spans, 'guanaitong.store.claim').slice(0, 1), ...spansNamed(spans, 'guanaitong.store.complete')]) {
        expect(parentOf(child), child.name).to.equal(pay.spanContext().spanId)
      }
      expect(parentOf(spansNamed(spans, 'shop.markPaid.pay')[0])).to.equal(handler.spanContext().spanId)
      expect(spansNamed(spans, 'shop.markPaid.notify')).to.have.length(0)
      // The name is kept on purpose (docs/observability.md, Spans): no span of its own for the pay's settlement,
      // and the trace still says where it came from: under the pay route's server span, beside the pay call whose answer it settles.
      expect(spans.map((s) => s.name)).to.not.include.members(['guanaitong.settle'])
      const [payCall] = spansNamed(spans, 'guanaitong.api').filter((s) => s.attributes['guanaitong.api.path'] === '/platformDealer/employee/pay')
      const [server] = spansNamed(spans, 'shop.http /gat/pay')
      expect(payCall, 'the pay call span').to.exist
      expect([parentOf(pay), parentOf(payCall)]).to.deep.equal([server.spanContext().spanId, server.spanContext().spanId])
    } finally {
      server.close()
      await sandbox.close()
    }
  })

  it('a transactional store: guanaitong.store.settle, with the handler span inside the transaction', async () => {
    const store: TransactionalStore = {
      transactional: true, retentionMs: 1000,
      async settle(_key, work) {
        await work({}, 1)
        return { status: 'completed' }
      },
    }
    const notification: Notification = {
      appId: APP_ID, outerTradeNo: `TX${Date.now() % 1e9}`, tradeNo: '2018070900000001', buyerOpenId: 'b', totalAmount: '1.00',
      totalFen: 100, attach: '', timestamp: Math.floor(Date.now() / 1000), raw: {},
    }
    const settle = createSettlement({ onPaid: () => {}, logger: recordingLogger() })
    const outcome = await trace.getTracer('the-shop').startActiveSpan('shop.request', async (root) => {
      try {
        return await settle({ notification, req: {} as Settlement['req'], source: 'notify', store })
      } finally {
        root.end()
      }
    })
    expect(outcome).to.deep.include({ answer: 'success' })
    const spans = sdk.spans.getFinishedSpans()
    const [settleSpan] = spansNamed(spans, 'guanaitong.store.settle')
    expect(parentOf(settleSpan)).to.equal(spansNamed(spans, 'shop.request')[0].spanContext().spanId)
    expect(parentOf(spansNamed(spans, 'guanaitong.handler')[0])).to.equal(settleSpan.spanContext().spanId)
  })

  describe('Guanaitong API calls, against the sandbox', () => {
    let sandbox: Sandbox
    const traceIds = new Map<string, string[]>()
    beforeEach(async () => {
      sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET })
      traceIds.clear()
      sandbox.on('request', (event) => {
        if (event.traceId) traceIds.set(event.path, [...(traceIds.get(event.path) ?? []), event.traceId])
      })
      await sandbox.start()
    })
    afterEach(() => sandbox.close())
    const client = () => createClient({ appId: APP_ID, appSecret: SECRET, baseUrl: sandbox.url, logger: recordingLogger(), timeoutMs: 2000 })
    const payParams = (outer: string) => ({
      buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', reason: '午餐', total_amount: '12.50', outer_trade_no: outer,
      asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
    })

    it('pay: a token refresh span over its /token/create call, a CLIENT span per call with code, HTTP status and the sandbox\'s x-trace-id', async () => {
      const before = await sdk.collect()
      const outer = `OT${Date.now() % 1e9}`
      await client().pay(payParams(outer))
      const spans = sdk.spans.getFinishedSpans()
      const calls = spansNamed(spans, 'guanaitong.api')
      expect(calls.map((s) => s.attributes['guanaitong.api.path'])).to.deep.equal(['/token/create', '/platformDealer/employee/pay'])
      for (const call of calls) {
        const path = call.attributes['guanaitong.api.path'] as string
        expect(call.kind).to.equal(SpanKind.CLIENT)
        expect(call.attributes).to.deep.include({ 'guanaitong.api.code': 0, 'http.response.status_code': 200 })
        expect(call.attributes['guanaitong.trace_id']).to.be.a('string').and.equal(traceIds.get(path)?.[0])
        expect(call.status.code).to.not.equal(SpanStatusCode.ERROR)
      }
      const [refresh] = spansNamed(spans, 'guanaitong.token.refresh')
      expect(parentOf(calls[0])).to.equal(refresh.spanContext().spanId)

      const after = await sdk.collect()
      const grew = (name: string, match: Record<string, unknown>) => count(after, name, match) - count(before, name, match)
      expect(grew('guanaitong.api.calls', { 'guanaitong.api.path': '/platformDealer/employee/pay', 'guanaitong.api.code': 0 })).to.equal(1)
      expect(grew('guanaitong.api.calls', { 'guanaitong.api.path': '/token/create', 'guanaitong.api.code': 0 })).to.equal(1)
      expect(grew('guanaitong.token.refreshes', { 'guanaitong.outcome': 'success' })).to.equal(1)
      const duration = points(after, 'guanaitong.api.duration', { 'guanaitong.api.path': '/platformDealer/employee/pay', 'guanaitong.api.code': 0 })
      expect(duration).to.have.length(1)
      const recorded = (data: typeof after) => (points(data, 'guanaitong.api.duration', { 'guanaitong.api.path': '/platformDealer/employee/pay', 'guanaitong.api.code': 0 })[0]?.value as { count: number } | undefined)?.count ?? 0
      expect(recorded(after) - recorded(before)).to.equal(1)
      expect(after.find((m) => m.descriptor.name === 'guanaitong.api.duration')?.descriptor.unit).to.equal('s')
    })

    it('an error answer (expired token, 1000210004) is an ERROR span with its code and trace id; the retry is its own span', async () => {
      const gat = client()
      await gat.getToken()
      sandbox.expireTokens()
      sdk.spans.reset()
      await gat.pay(payParams(`OE${Date.now() % 1e9}`))
      const pays = spansNamed(sdk.spans.getFinishedSpans(), 'guanaitong.api')
        .filter((s) => s.attributes['guanaitong.api.path'] === '/platformDealer/employee/pay')
      expect(pays).to.have.length(2)
      expect(pays[0].status.code).to.equal(SpanStatusCode.ERROR)
      expect(pays[0].attributes).to.deep.include({ 'guanaitong.api.code': 1000210004, 'error.type': 'api' })
      expect(pays[0].attributes['guanaitong.trace_id']).to.equal(traceIds.get('/platformDealer/employee/pay')?.[0])
      expect(pays[1].status.code).to.not.equal(SpanStatusCode.ERROR)
    })

    it('a 5xx page and a garbled answer are ERROR spans with the HTTP status and the kind of failure, counted by error.type', async () => {
      const gat = client()
      await gat.getToken()
      sdk.spans.reset()
      const failedCalls = async (type: string) => count(await sdk.collect(), 'guanaitong.api.calls', { 'guanaitong.api.path': '/platformDealer/employee/pay', 'error.type': type })
      const before = { http: await failedCalls('http'), invalid: await failedCalls('invalid-response') }
      sandbox.respond5xx({ path: '/platformDealer/employee/pay', status: 503 })
      await gat.pay(payParams(`OX${Date.now() % 1e9}`)).then(() => expect.fail('resolved'), () => {})
      // Processed, then spoilt: the application answered, so the header carries its trace id.
      sandbox.garble({ path: '/platformDealer/employee/pay', processed: true })
      await gat.pay(payParams(`OG${Date.now() % 1e9}`)).then(() => expect.fail('resolved'), () => {})
      const [page, garbled] = spansNamed(sdk.spans.getFinishedSpans(), 'guanaitong.api')
      expect(page.status.code).to.equal(SpanStatusCode.ERROR)
      expect(page.attributes).to.deep.include({ 'http.response.status_code': 503, 'error.type': 'http' })
      expect(garbled.status.code).to.equal(SpanStatusCode.ERROR)
      expect(garbled.attributes).to.deep.include({ 'http.response.status_code': 200, 'error.type': 'invalid-response' })
      expect(garbled.attributes['guanaitong.trace_id']).to.be.a('string').and.equal(traceIds.get('/platformDealer/employee/pay')?.[0])
      expect(await failedCalls('http')).to.equal(before.http + 1)
      expect(await failedCalls('invalid-response')).to.equal(before.invalid + 1)
    })
  })
})

describe('observability: an SDK registered after the router was built (ESM hoists the imports above the SDK setup)', () => {
  it('the router built first records spans and metrics once the SDK is registered', async () => {
    const app = notifyApp(express)
    // Nothing registered yet: a notification is answered as usual and leaves nothing behind.
    await post(app, formBody(paidFields())).expect('success')
    const sdk = registerSdk()
    try {
      const fields = paidFields()
      await post(app, formBody(fields)).expect('success')
      const [notify] = spansNamed(sdk.spans.getFinishedSpans(), 'guanaitong.notify')
      expect(notify?.attributes['guanaitong.outer_trade_no']).to.equal(fields.outer_trade_no)
      expect(count(await sdk.collect(), 'guanaitong.notifications', { 'guanaitong.outcome': 'success' })).to.equal(1)
    } finally {
      await sdk.unregister()
    }
  })

  it('a meter provider swapped for another one is followed', async () => {
    const app = notifyApp(express)
    const first = registerMeterProvider()
    await post(app, formBody(paidFields())).expect('success')
    metrics.disable()
    const second = registerMeterProvider()
    try {
      await post(app, formBody(paidFields())).expect('success')
      expect(count(await first.collect(), 'guanaitong.notifications')).to.equal(1)
      expect(count(await second.collect(), 'guanaitong.notifications')).to.equal(1)
    } finally {
      await first.meterProvider.shutdown()
      await second.meterProvider.shutdown()
      metrics.disable()
    }
  })
})
