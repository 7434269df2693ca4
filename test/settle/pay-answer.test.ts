/**
 * Issue 10: the pay answer settles the order, exactly once with the notification. Real router,
 * real sandbox, both Express majors.
 */
import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import request from 'supertest'
import { guanaitong } from '../../src/adapters/express/router'
import { MemoryStore } from '../../src/stores/memory'
import { createSandbox, SANDBOX_CODES, type Sandbox } from '../../src/testing/sandbox'
import type { GuanaitongOptions, Payment, SettleContext } from '../../src/kernel/types'
import { EXPRESS_VERSIONS, recordingLogger, routerBehindSandbox, sleep } from '../helpers'

const APP = { appId: '20110698', appSecret: 'sandbox-secret' }
const BUYER = 'd87797eea12a2f80ad72ed93214a0908'

let seq = 0
const order = (overrides: Record<string, unknown> = {}) => ({
  outer_trade_no: `PA${Date.now() % 1e8}${++seq}`,
  reason: '午餐支付',
  asset_type: '1',
  asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
  ...overrides,
})

interface Settled {
  payment: Payment
  ctx: SettleContext
}

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`settle on the pay answer (${name})`, function () {
    this.timeout(60_000)
    let sandbox: Sandbox
    let server: Server
    let base: string
    let settled: Settled[]
    let onPaid: (p: Payment, ctx: SettleContext) => Promise<void>
    let logger: ReturnType<typeof recordingLogger>

    async function shop(options: Partial<GuanaitongOptions> = {}): Promise<void> {
      ;({ server, base } = routerBehindSandbox(express, sandbox, {
        ...APP,
        logger,
        store: new MemoryStore(),
        preparePayment: (_req, params) => ({ ...params, buyer_open_id: BUYER, total_amount: '19.99' }),
        onPaid: (p, _req, ctx) => onPaid(p, ctx),
        ...options,
      }))
    }

    beforeEach(async () => {
      sandbox = createSandbox({ ...APP, timeScale: 0.001 })
      await sandbox.start()
      settled = []
      logger = recordingLogger()
      onPaid = async (payment, ctx) => { settled.push({ payment, ctx }) }
    })
    afterEach(async () => {
      await sandbox.close()
      server?.close()
    })

    const ofOrder = (no: string) => settled.filter((s) => s.payment.outerTradeNo === no)

    it('with notifications off, the order is paid from the answer alone', async () => {
      await shop()
      sandbox.setNotifications('off')
      const body = order({ attach: '测试' })
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body).to.deep.equal({ trade_no: res.body.trade_no, outer_trade_no: body.outer_trade_no, settled: true })
      expect(sandbox.getPayment(body.outer_trade_no)!.state).to.equal('unnotified')
      expect(ofOrder(body.outer_trade_no)).to.have.length(1)
      const [{ payment, ctx }] = settled
      expect(payment).to.include({
        appId: APP.appId, outerTradeNo: body.outer_trade_no, tradeNo: res.body.trade_no, buyerOpenId: BUYER,
        totalAmount: '19.99', totalFen: 1999, attach: '测试',
      })
      expect(payment.raw).to.include({ outer_trade_no: body.outer_trade_no, trade_no: res.body.trade_no, total_amount: '19.99' })
      expect(payment.raw).to.not.have.property('sign')
      expect(Math.abs(payment.timestamp - Date.now() / 1000)).to.be.below(5)
      expect(ctx).to.deep.equal({ source: 'pay', attempt: 1 })
    })

    it('pay then notification: onPaid once, and the notification is acknowledged without running it', async () => {
      await shop()
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body.settled).to.equal(true)
      const payment = await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(payment.attempts.map((a) => a.body)).to.deep.equal(['success'])
      expect(ofOrder(body.outer_trade_no).map((s) => s.ctx.source)).to.deep.equal(['pay'])
    })

    it('a notification delivered before the pay answer settles it; the pay answer then reads settled: true without running onPaid', async () => {
      await shop()
      sandbox.setNotifications('before-answer')
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body.settled).to.equal(true)
      expect(sandbox.getPayment(body.outer_trade_no)!.attempts.map((a) => a.body)).to.deep.equal(['success'])
      expect(ofOrder(body.outer_trade_no).map((s) => s.ctx.source)).to.deep.equal(['notify'])
    })

    it('a notification arriving while the pay answer holds the claim answers fail (IN_PROGRESS) and is settled on its retry', async () => {
      let release!: () => void
      const gate = new Promise<void>((resolve) => { release = resolve })
      onPaid = async (payment, ctx) => {
        if (ctx.source === 'pay') await gate
        settled.push({ payment, ctx })
      }
      await shop()
      const body = order()
      const paying = request(base).post('/gat/pay').send(body)
      const first = await new Promise<{ status: number | null; body: string | null }>((resolve) => {
        sandbox.once('attempt', ({ attempt }) => resolve(attempt))
        void paying.then(() => {})
      })
      expect(first).to.include({ status: 409, body: 'fail' })
      release()
      expect((await paying).body.settled).to.equal(true)
      const payment = await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(payment.attempts.map((a) => a.body)).to.deep.equal(['fail', 'success'])
      expect(ofOrder(body.outer_trade_no).map((s) => s.ctx.source)).to.deep.equal(['pay'])
      expect(logger.reasons()).to.include('IN_PROGRESS')
    })

    it('onPaid throws on the pay path: 200 with settled: false, logged at warn with the reason; the notification settles it once', async () => {
      let calls = 0
      onPaid = async (payment, ctx) => {
        calls++
        if (ctx.source === 'pay') throw new Error('database busy')
        settled.push({ payment, ctx })
      }
      await shop()
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body).to.include({ outer_trade_no: body.outer_trade_no, settled: false })
      const warning = logger.lines.find((l) => l.level === 'warn' && l.context?.source === 'pay')
      expect(warning?.context).to.include({ reason: 'HANDLER_FAILED', outerTradeNo: body.outer_trade_no })
      await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(calls).to.equal(2)
      expect(ofOrder(body.outer_trade_no).map((s) => [s.ctx.source, s.ctx.attempt])).to.deep.equal([['notify', 2]])
    })

    it('payment.raw.attach is the same on both channels: attach as sent, percent-encoded; payment.attach as the shop passed it', async () => {
      const runs: Payment[] = []
      onPaid = async (payment, ctx) => {
        runs.push(payment)
        if (ctx.source === 'pay') throw new Error('database busy') // so the notification runs it too
      }
      await shop()
      const attach = 'a&b=c%d 测试'
      const body = order({ attach })
      expect((await request(base).post('/gat/pay').send(body).expect(200)).body.settled).to.equal(false)
      await sandbox.waitForAcknowledged(body.outer_trade_no)
      const [fromPay, fromNotify] = runs
      expect(runs).to.have.length(2)
      expect(fromNotify.raw.attach).to.equal('a%26b%3Dc%25d 测试')
      expect(fromPay.raw.attach).to.equal(fromNotify.raw.attach)
      expect([fromPay.attach, fromNotify.attach]).to.deep.equal([attach, attach])
    })

    it('a findOrder mismatch on the pay answer is logged once, at error, with the problem: not settled, onMismatch called', async () => {
      const mismatches: string[] = []
      await shop({ findOrder: () => ({ totalAmount: '0.01', buyerOpenId: BUYER }), onMismatch: (m) => { mismatches.push(m.problem) } })
      sandbox.setNotifications('off')
      const body = order()
      expect((await request(base).post('/gat/pay').send(body).expect(200)).body.settled).to.equal(false)
      const lines = logger.lines.filter((l) => l.context?.reason === 'ORDER_MISMATCH')
      expect(lines.map((l) => [l.level, l.context?.problem, l.context?.outerTradeNo])).to.deep.equal([['error', 'amount', body.outer_trade_no]])
      expect(lines[0].message).to.not.contain('the notification will settle it')
      expect(mismatches).to.deep.equal(['amount'])
    })

    it('onPaid slower than handlerTimeoutMs on the pay path: settled: false at the time-out, and nothing runs twice', async () => {
      onPaid = async (payment, ctx) => {
        if (ctx.source === 'pay') await sleep(300)
        settled.push({ payment, ctx })
      }
      await shop({ handlerTimeoutMs: 100 })
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body.settled).to.equal(false)
      await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(ofOrder(body.outer_trade_no).map((s) => s.ctx.source)).to.deep.equal(['pay'])
      expect(logger.reasons()).to.include('HANDLER_TIMEOUT')
    })

    it('settleOnPay: false keeps the notification as the only channel', async () => {
      await shop({ settleOnPay: false })
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body).to.deep.equal({ trade_no: res.body.trade_no, outer_trade_no: body.outer_trade_no })
      await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(ofOrder(body.outer_trade_no).map((s) => s.ctx.source)).to.deep.equal(['notify'])
    })

    it('a refused pay (failed, reused order number, time-out) runs no handler', async () => {
      await shop({ timeoutMs: 300 })
      sandbox.setNotifications('off')
      sandbox.failNextPays(1)
      const failed = order()
      expect((await request(base).post('/gat/pay').send(failed)).body.code).to.equal(SANDBOX_CODES.PAY_FAILED)

      const reused = order()
      await request(base).post('/gat/pay').send(reused).expect(200)
      settled = []
      const again = await request(base).post('/gat/pay').send(reused)
      expect(again.status).to.equal(409)

      sandbox.hang({ path: '/platformDealer/employee/pay' })
      const hung = await request(base).post('/gat/pay').send(order())
      expect(hung.status).to.equal(504)
      expect(settled).to.deep.equal([])
    })

    it('50 pays, each raced by 2 concurrent notifications of the same trade: onPaid exactly once each, every notification acknowledged', async () => {
      await shop()
      const extra: Array<ReturnType<Sandbox['notify']>> = []
      sandbox.on('pay', ({ payment }) => {
        // A second copy of the notification, at the same moment as the sandbox's own delivery.
        extra.push(sandbox.notify(`${base}/gat/notify`, {
          outer_trade_no: payment.outerTradeNo, trade_no: payment.tradeNo, buyer_open_id: payment.buyerOpenId,
          total_amount: payment.totalAmount,
        }))
      })
      const bodies = Array.from({ length: 50 }, () => order())
      const answers = await Promise.all(bodies.map((b) => request(base).post('/gat/pay').send(b)))
      expect(answers.map((a) => a.status)).to.deep.equal(bodies.map(() => 200))
      await sandbox.waitIdle(30_000)
      for (const b of bodies) expect(ofOrder(b.outer_trade_no), b.outer_trade_no).to.have.length(1)
      expect(settled).to.have.length(50)
      expect(extra).to.have.length(50)
      for (const d of [...extra, ...sandbox.deliveries]) expect(d.state, `delivery ${d.id}`).to.equal('acknowledged')
    })
  })
}

describe('the README on settled (the pay route\'s 200 row)', () => {
  it('says settled: true also when the notification settled the order first, as the test above shows', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const row = readme.split('\n').find((l) => l.startsWith('| 200 | `{ trade_no, outer_trade_no, settled }`'))
    expect(row).to.be.a('string')
    expect(row).to.match(/`settled: true` when the order is settled: `onPaid` ran from this answer, or had already run from the notification/)
  })
})
