/**
 * Issue 21 item 4: the two channels (the pay answer, the notifications) are cross-checked. A
 * failure notice for a paid order, a payment after a failure notice, and a duplicate that differs
 * from what settled go to onMismatch and logger.error; onPayFailed never runs for a paid order.
 * Real router, real sandbox, both Express majors, MemoryStore and RedisStore.
 */
import { expect } from 'chai'
import type { Server } from 'node:http'
import { Redis } from 'ioredis'
import request from 'supertest'
import { MemoryStore } from '../../src/stores/memory'
import { RedisStore } from '../../src/stores/redis'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { encodeForm, signNotification } from '../../src/testing/sign-notification'
import { notificationKey } from '../../src/core/settle/key'
import { createSettlement } from '../../src/core/settle/settle'
import type { ChannelMismatch, Fields, Mismatch, Notification, NotifyStore, Payment, SettleStore } from '../../src/kernel/types'
import { deleteKeys, REDIS_URL, uniquePrefix } from '../stores/redis-helpers'
import { EXPRESS_VERSIONS, recordingLogger, routerBehindSandbox } from '../helpers'

const APP = { appId: '20110698', appSecret: 'sandbox-secret' }
const BUYER = 'd87797eea12a2f80ad72ed93214a0908'
let seq = 0
const orderNo = () => `CX${Date.now() % 1e8}${++seq}`

const prefix = uniquePrefix('cross-check')
let redis: Redis
before(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
})
after(async () => {
  await deleteKeys(redis, prefix)
  redis.disconnect()
})

const STORES: Array<{ store: string; make: () => SettleStore }> = [
  { store: 'MemoryStore', make: () => new MemoryStore() },
  { store: 'RedisStore', make: () => new RedisStore({ client: redis, prefix }) },
]

for (const { name, express } of EXPRESS_VERSIONS) {
  for (const { store: storeName, make } of STORES) {
    describe(`the two channels cross-checked (${name}, ${storeName})`, function () {
      this.timeout(30_000)
      let sandbox: Sandbox
      let server: Server
      let base: string
      let paid: Payment[]
      let failed: Payment[]
      let mismatches: Mismatch[]
      let logger: ReturnType<typeof recordingLogger>

      beforeEach(async () => {
        sandbox = createSandbox({ ...APP, timeScale: 0.001 })
        await sandbox.start()
        sandbox.setNotifications('off')
        paid = []
        failed = []
        mismatches = []
        logger = recordingLogger()
        ;({ server, base } = routerBehindSandbox(express, sandbox, {
          ...APP,
          logger,
          store: make(),
          preparePayment: (_req, params) => ({ ...params, buyer_open_id: BUYER, total_amount: '19.99' }),
          onPaid: (p) => { paid.push(p) },
          onPayFailed: (p) => { failed.push(p) },
          onMismatch: (m) => { mismatches.push(m) },
        }))
      })
      afterEach(async () => {
        await sandbox.close()
        server?.close()
      })

      /** Posts a notification signed with the application's secret, as Guanaitong would. */
      const notify = async (fields: Record<string, string>) => {
        const signed: Fields = signNotification({ appid: APP.appId, buyer_open_id: BUYER, total_amount: '19.99', ...fields }, APP.appSecret)
        const res = await request(base).post('/gat/notify').set('Content-Type', 'application/x-www-form-urlencoded').send(encodeForm(signed))
        return res.text
      }
      const channelErrors = () => logger.lines.filter((l) => l.level === 'error' && l.context?.reason === 'CHANNEL_MISMATCH')
      const only = (): ChannelMismatch => {
        expect(mismatches).to.have.length(1)
        return mismatches[0] as ChannelMismatch
      }

      it('a failure notice for an order the pay answer settled as paid: onMismatch and logger.error, never onPayFailed, acknowledged', async () => {
        const no = orderNo()
        const res = await request(base).post('/gat/pay').send({ outer_trade_no: no, reason: '午餐', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' }).expect(200)
        expect(res.body.settled).to.equal(true)
        expect(await notify({ outer_trade_no: no, trade_no: '' })).to.equal('success')
        expect(await notify({ outer_trade_no: no, trade_no: '' }), 'its retry too').to.equal('success')
        expect(failed).to.deep.equal([])
        expect(paid.map((p) => p.outerTradeNo)).to.deep.equal([no])
        expect(mismatches.map((m) => m.problem)).to.deep.equal(['failed-after-paid', 'failed-after-paid'])
        const m = mismatches[0] as ChannelMismatch
        expect(m.source).to.equal('notify')
        expect(m.settled).to.deep.equal({ outcome: 'paid', tradeNo: res.body.trade_no, totalAmount: '19.99', totalFen: 1999, buyerOpenId: BUYER })
        expect(m.fields).to.deep.equal(['outcome', 'tradeNo'])
        expect(channelErrors()).to.have.length(2)
        expect(channelErrors()[0].context).to.include({ problem: 'failed-after-paid', outerTradeNo: no })
      })

      it('a payment after a failure notice: onPaid runs (the employee was charged), reported to onMismatch and logger.error', async () => {
        const no = orderNo()
        expect(await notify({ outer_trade_no: no, trade_no: '' })).to.equal('success')
        expect(failed.map((p) => p.outerTradeNo)).to.deep.equal([no])
        expect(mismatches).to.deep.equal([])
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000777' })).to.equal('success')
        expect(paid.map((p) => p.tradeNo)).to.deep.equal(['2018070920000777'])
        const m = only()
        expect(m.problem).to.equal('paid-after-failed')
        expect(m.notification.tradeNo).to.equal('2018070920000777')
        expect(m.settled).to.deep.equal({ outcome: 'failed', tradeNo: '', totalAmount: '19.99', totalFen: 1999, buyerOpenId: BUYER })
        expect(channelErrors()).to.have.length(1)
        // Its duplicate agrees with what settled: not reported again.
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000777' })).to.equal('success')
        expect(mismatches).to.have.length(1)
      })

      it('a duplicate whose trade number, amount or buyer differ from what settled: acknowledged, nothing runs, each reported', async () => {
        const no = orderNo()
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000001' })).to.equal('success')
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000001' })).to.equal('success')
        expect(mismatches, 'an agreeing duplicate is not reported').to.deep.equal([])
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000002' })).to.equal('success')
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000001', total_amount: '0.01' })).to.equal('success')
        expect(await notify({ outer_trade_no: no, trade_no: '2018070920000001', buyer_open_id: 'someone-else' })).to.equal('success')
        expect(paid).to.have.length(1)
        expect(mismatches.map((m) => [m.problem, (m as ChannelMismatch).fields])).to.deep.equal([
          ['differs-from-settled', ['tradeNo']],
          ['differs-from-settled', ['totalAmount']],
          ['differs-from-settled', ['buyerOpenId']],
        ])
        expect(channelErrors()).to.have.length(3)
      })

      it('a notification that differs from the pay answer that settled the order is reported', async () => {
        const no = orderNo()
        const res = await request(base).post('/gat/pay').send({ outer_trade_no: no, reason: '午餐', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' }).expect(200)
        expect(await notify({ outer_trade_no: no, trade_no: res.body.trade_no })).to.equal('success')
        expect(mismatches).to.deep.equal([])
        expect(await notify({ outer_trade_no: no, trade_no: res.body.trade_no, total_amount: '199.90' })).to.equal('success')
        const m = only()
        expect([m.problem, m.source, m.fields]).to.deep.equal(['differs-from-settled', 'notify', ['totalAmount']])
        expect(paid).to.have.length(1)
      })
    })
  }
}

describe('the cross-check in the settlement core', () => {
  const failure = (no: string): Notification => ({
    appId: APP.appId, outerTradeNo: no, tradeNo: '', buyerOpenId: BUYER, totalAmount: '19.99', totalFen: 1999, attach: '', timestamp: 0, raw: {},
  })
  const req = {} as never

  it('a failure notice while the payment is being settled is answered IN_PROGRESS, onPayFailed not run', async () => {
    const store = new MemoryStore()
    const no = orderNo()
    const held = await store.claim(notificationKey({ appId: APP.appId, outerTradeNo: no, tradeNo: 'T' }))
    expect(held.status).to.equal('claimed')
    let ran = 0
    const settle = createSettlement({ onPaid: () => undefined, onPayFailed: () => { ran++ }, logger: recordingLogger() })
    const outcome = await settle({ notification: failure(no), req, source: 'notify', store })
    expect(outcome.answer === 'fail' && outcome.rejection.reason).to.equal('IN_PROGRESS')
    expect(ran).to.equal(0)
  })

  it('a store without peek runs failure notices as before (no cross-check, no extra call)', async () => {
    const inner = new MemoryStore()
    const calls: string[] = []
    const store: NotifyStore = {
      leaseMs: inner.leaseMs, retentionMs: inner.retentionMs,
      claim: (k) => { calls.push('claim'); return inner.claim(k) },
      complete: (k, o) => { calls.push('complete'); return inner.complete(k, o) },
      release: (k, o) => inner.release(k, o),
    }
    let ran = 0
    const settle = createSettlement({ onPaid: () => undefined, onPayFailed: () => { ran++ }, logger: recordingLogger() })
    const outcome = await settle({ notification: failure(orderNo()), req, source: 'notify', store })
    expect(outcome).to.deep.equal({ answer: 'success', how: 'settled' })
    expect([ran, calls]).to.deep.equal([1, ['claim', 'complete']])
  })
})
