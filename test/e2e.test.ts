import { expect } from 'chai'
import type { Server } from 'node:http'
import request from 'supertest'
import { createClient } from '../src/client'
import { guanaitong } from '../src/adapters/express/router'
import { createSandbox, SANDBOX_CODES, type Sandbox } from '../src/testing/sandbox'
import type { Payment } from '../src/kernel/types'
import { EXPRESS_VERSIONS, recordingLogger, routerBehindSandbox } from './helpers'

const APP = { appId: '20110698', appSecret: 'sandbox-secret' }
// 1 ms per second of Guanaitong's schedule: a 15 s retry comes after 15 ms.
const TIME_SCALE = 0.001

let seq = 0
const order = (overrides: Record<string, unknown> = {}) => ({
  outer_trade_no: `E2E${Date.now() % 1e8}${++seq}`,
  reason: '午餐支付',
  asset_type: '1',
  asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
  ...overrides,
})

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`end to end: app + router + sandbox (${name})`, () => {
    let sandbox: Sandbox
    let server: Server
    let paid: Payment[]
    let failedNotices: Payment[]
    let onPaid: (p: Payment) => Promise<void>
    let base: string
    const logger = recordingLogger()

    beforeEach(async () => {
      sandbox = createSandbox({ ...APP, timeScale: TIME_SCALE })
      await sandbox.start()
      paid = []
      failedNotices = []
      onPaid = async (p) => { paid.push(p) }
      ;({ server, base } = routerBehindSandbox(express, sandbox, {
        ...APP,
        logger,
        preparePayment: (_req, params) => ({ ...params, buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', total_amount: '100.01' }),
        onPaid: (p) => onPaid(p),
        onPayFailed: async (n) => { failedNotices.push(n) },
      }))
    })
    afterEach(async () => {
      await sandbox.close()
      server.close()
    })

    it('pay → notification → onPaid once → the sandbox reads success', async () => {
      const body = order({ attach: '测试' })
      const res = await request(base).post('/gat/pay').send(body)
      expect(res.status).to.equal(200)
      const payment = await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(res.body.trade_no).to.equal(payment.tradeNo)
      expect(payment.attempts.map((a) => a.body)).to.deep.equal(['success'])
      expect(paid).to.have.length(1)
      expect(paid[0]).to.include({ outerTradeNo: body.outer_trade_no, tradeNo: payment.tradeNo, totalAmount: '100.01', totalFen: 10001, attach: '测试' })
      expect(sandbox.stats.tokenCalls).to.equal(1)
    })

    it('onPaid fails on the pay answer and the first notification → the sandbox retries with a fresh sign → processed once', async () => {
      let calls = 0
      onPaid = async (p) => { calls++; if (calls < 3) throw new Error('database busy'); paid.push(p) }
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(200)
      expect(res.body.settled).to.equal(false)
      const payment = await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(payment.attempts.map((a) => a.body)).to.deep.equal(['fail', 'success'])
      expect(paid).to.have.length(1)
    })

    it('a duplicate delivery after success is acknowledged without running onPaid again', async () => {
      const body = order()
      await request(base).post('/gat/pay').send(body).expect(200)
      const payment = await sandbox.waitForAcknowledged(body.outer_trade_no)
      const { sign: _s, timestamp: _t, ...fields } = payment.attempts[0].fields
      const again = await sandbox.waitForDelivery(sandbox.notify(`${base}/gat/notify`, fields), 'acknowledged')
      expect(again.attempts[0].body).to.equal('success')
      expect(paid).to.have.length(1)
    })

    it('a failed payment answers 502 without settling, and its notice reaches onPayFailed with an empty tradeNo, not onPaid', async () => {
      sandbox.setPayOutcome('failed')
      const body = order()
      const res = await request(base).post('/gat/pay').send(body).expect(502)
      expect(res.body).to.include({ code: SANDBOX_CODES.PAY_FAILED, ambiguous: false })
      await sandbox.waitForAcknowledged(body.outer_trade_no)
      expect(paid).to.have.length(0)
      expect(failedNotices.map((n) => [n.outerTradeNo, n.tradeNo])).to.deep.equal([[body.outer_trade_no, '']])
    })

    it('an expired token is replaced once and the pay goes through', async () => {
      await request(base).post('/gat/pay').send(order()).expect(200)
      sandbox.expireTokens()
      await request(base).post('/gat/pay').send(order()).expect(200)
      expect(sandbox.stats.tokenCalls).to.equal(2)
      expect(sandbox.stats.payCalls).to.equal(3)
    })

    it('a reused outer_trade_no answers 409 and sends nothing new', async () => {
      const body = order()
      await request(base).post('/gat/pay').send(body).expect(200)
      const res = await request(base).post('/gat/pay').send(body)
      expect(res.status).to.equal(409)
      expect(res.body.code).to.equal(1001220005)
      expect(sandbox.stats.paymentsCreated).to.equal(1)
    })

    it('an invalid amount answers 400 naming the field, and nothing reaches the sandbox', async () => {
      const res = await request(base).post('/gat/pay').send(order())
        .then(() => request(base).post('/gat/pay').send(order({ outer_trade_no: 'X' })))
      expect(res.status).to.equal(400)
      expect(res.body.field).to.equal('outer_trade_no')
      expect(sandbox.stats.payCalls).to.equal(1)
    })
  })
}

describe('end to end: upstream faults on the pay route', () => {
  let sandbox: Sandbox
  let server: Server
  let base: string
  beforeEach(async () => {
    sandbox = createSandbox({ ...APP, timeScale: TIME_SCALE })
    await sandbox.start()
    const { default: express } = await import('express')
    const app = express()
    app.use('/gat', guanaitong({
      ...APP, logger: recordingLogger(), payPath: '/pay', onPaid: () => {},
      client: createClient({ ...APP, baseUrl: sandbox.url, timeoutMs: 300 }),
      preparePayment: (_req, p) => ({ ...p, buyer_open_id: 'b1', total_amount: '5.00' }),
    }))
    server = app.listen(0)
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  afterEach(async () => {
    await sandbox.close()
    server.close()
  })

  it('a pay that hangs after Guanaitong processed it answers 504 ambiguous, and is not re-sent', async () => {
    await request(base).post('/gat/pay').send(order()).expect(200)
    sandbox.hang({ path: '/platformDealer/employee/pay', processed: true })
    const body = order()
    const res = await request(base).post('/gat/pay').send(body)
    expect(res.status).to.equal(504)
    expect(res.body).to.include({ ambiguous: true, outer_trade_no: body.outer_trade_no })
    expect(sandbox.getPayment(body.outer_trade_no)).to.not.equal(undefined)
    expect(sandbox.stats.payCalls).to.equal(2)
  })

  for (const fault of ['respond5xx', 'garble'] as const) {
    it(`a ${fault === 'garble' ? 'garbled JSON' : 'HTML 502'} answer to pay is a 502, not a crash`, async () => {
      sandbox[fault]({ path: '/platformDealer/employee/pay' })
      const res = await request(base).post('/gat/pay').send(order())
      expect(res.status).to.equal(502)
      expect(res.body.code).to.match(/^GAT_(HTTP|INVALID_RESPONSE)$/)
    })
  }
})
