/**
 * Node's TracingChannel events `guanaitong:notify` and `guanaitong:api`, seen by a subscriber the
 * way an APM tool subscribes: no OpenTelemetry SDK involved.
 */
import { expect } from 'chai'
import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel } from 'node:diagnostics_channel'
import request from 'supertest'
import { createClient } from '../../src/client'
import { guanaitong } from '../../src/adapters/express/router'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { APP_ID, EXPRESS_VERSIONS, SECRET, formBody, paidFields, recordingLogger, unusedClient } from '../helpers'

type Event = { event: string; context: Record<string, unknown> }

/** Subscribes to every event of the channel, recording a snapshot of the context at each. */
function listen(name: string) {
  const events: Event[] = []
  const at = (event: string) => (message: unknown) => {
    events.push({ event, context: { ...(message as Record<string, unknown>) } })
  }
  const handlers = { start: at('start'), end: at('end'), asyncStart: at('asyncStart'), asyncEnd: at('asyncEnd'), error: at('error') }
  const channel = tracingChannel(name)
  channel.subscribe(handlers)
  return { events, stop: () => channel.unsubscribe(handlers) }
}

describe('observability: diagnostics_channel TracingChannel events', () => {
  const express = EXPRESS_VERSIONS[0].express

  it('guanaitong:notify: start, end, then asyncStart/asyncEnd with the answer as result, for success and fail alike', async () => {
    const app = express()
    const inHandler: number[] = []
    const paid = paidFields()
    const sub = listen('guanaitong:notify')
    try {
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, client: unusedClient, payPath: false, logger: recordingLogger(),
        // The handler runs after `start` and before `asyncEnd` of its notification.
        onPaid: () => { inHandler.push(sub.events.length) },
      }))
      await request(app).post('/gat/notify').type('form').send(formBody(paid)).expect(200, 'success')
      await request(app).post('/gat/notify').type('form').send(formBody({ ...paidFields(), sign: 'f'.repeat(40) })).expect(401, 'fail')
    } finally {
      sub.stop()
    }
    expect(sub.events.map((e) => e.event)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd', 'start', 'end', 'asyncStart', 'asyncEnd'])
    expect(sub.events[0].context).to.deep.equal({ source: 'notify' })
    expect(sub.events[3].context.result).to.deep.equal({ outcome: 'success', reason: 'HANDLED', outerTradeNo: paid.outer_trade_no })
    expect(sub.events[7].context.result).to.include({ outcome: 'fail', reason: 'BAD_SIGN' })
    expect(inHandler).to.deep.equal([2])
  })

  it('guanaitong:api: one traced operation per call with path, and code, status and trace id as result (never the answer data)', async () => {
    const sandbox: Sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET })
    await sandbox.start()
    const sub = listen('guanaitong:api')
    try {
      const client = createClient({ appId: APP_ID, appSecret: SECRET, baseUrl: sandbox.url, logger: recordingLogger(), timeoutMs: 2000 })
      await client.getToken()
      sandbox.respond5xx({ path: '/platformDealer/employee/pay' })
      const failure = await client.pay({
        buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', reason: '午餐', total_amount: '1.00', outer_trade_no: `CH${Date.now() % 1e9}`,
        asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
      }).then(() => null, (err: unknown) => err)
      expect(failure).to.be.an('error')

      expect(sub.events.map((e) => e.event)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd', 'start', 'end', 'error', 'asyncStart', 'asyncEnd'])
      const token = sub.events[3].context
      expect(token.path).to.equal('/token/create')
      expect(token.result).to.deep.include({ code: 0, status: 200 })
      expect((token.result as { traceId?: string }).traceId).to.be.a('string')
      expect(JSON.stringify(token.result)).to.not.contain(sandbox.validTokens[0])
      const pay = sub.events[6].context
      expect(pay.path).to.equal('/platformDealer/employee/pay')
      expect(pay.error).to.equal(failure)
    } finally {
      sub.stop()
      await sandbox.close()
    }
  })

  it('a store bound to guanaitong:notify start (as APM tools do) is visible inside onPaid', async () => {
    const store = new AsyncLocalStorage<{ source: unknown }>()
    const start = tracingChannel('guanaitong:notify').start
    start.bindStore(store, (context) => ({ source: (context as { source: unknown }).source }))
    const seen: unknown[] = []
    try {
      const app = express()
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, client: unusedClient, payPath: false, logger: recordingLogger(),
        onPaid: async () => { await new Promise((resolve) => setImmediate(resolve)); seen.push(store.getStore()) },
      }))
      await request(app).post('/gat/notify').type('form').send(formBody(paidFields())).expect(200, 'success')
    } finally {
      start.unbindStore(store)
    }
    expect(seen).to.deep.equal([{ source: 'notify' }])
  })

  it('no subscriber: notifications are answered the same', async () => {
    const app = express()
    app.use('/gat', guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, payPath: false, logger: recordingLogger(), onPaid: () => {} }))
    expect(tracingChannel('guanaitong:notify').hasSubscribers).to.equal(false)
    await request(app).post('/gat/notify').type('form').send(formBody(paidFields())).expect(200, 'success')
  })
})
