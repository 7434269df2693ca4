/**
 * The security review's re-split forgery (issue 9, item 1), run end to end: a buyer pays a 0.01
 * order through the router's pay route against the real sandbox with an `attach` that carries
 * `&outer_trade_no=VICTIM&…&total_amount=8888.00`, takes the signed notification the sandbox
 * delivered, and re-posts it split differently, with the original sign, as a payment of 8888.00
 * for order VICTIM. See docs/gat-protocol.md, "A weakness of the signing rule: re-splitting".
 */
import { expect } from 'chai'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import request from 'supertest'
import { guanaitong } from '../../src/adapters/express/router'
import { createSandbox, type Sandbox, type SandboxAttempt } from '../../src/testing/sandbox'
import { encodeForm } from '../../src/testing/sign-notification'
import type { Fields, OrderSummary, Payment } from '../../src/kernel/types'
import { EXPRESS_VERSIONS, recordingLogger } from '../helpers'

const APP = { appId: '20110698', appSecret: 'sandbox-secret' }
const BUYER = 'd87797eea12a2f80ad72ed93214a0908'
const ASSET = 'a5fad9894edd0d2202639248fa0461ec'

let seq = 0

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`the review's re-split forgery, end to end through the sandbox (${name})`, () => {
    let sandbox: Sandbox
    let server: Server
    let base: string
    let paid: Payment[]
    let orders: Map<string, OrderSummary & { title: string }>
    const logger = recordingLogger()

    beforeEach(async () => {
      sandbox = createSandbox({ ...APP, timeScale: 0.001 })
      await sandbox.start()
      paid = []
      logger.lines.length = 0
      seq += 1
      orders = new Map([
        [`CHEAP${seq}`, { totalAmount: '0.01', title: '一瓶水', buyerOpenId: BUYER }],
        [`VICTIM${seq}`, { totalAmount: '8888.00', title: '笔记本电脑' }],
      ])
      const app = express()
      app.use(express.json())
      server = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      app.use('/gat', guanaitong({
        ...APP,
        baseUrl: sandbox.url,
        notifyUrl: `${base}/gat/notify`,
        logger,
        // The 0.1 README's pattern: spread the browser's fields, then set buyer and amount from the order.
        preparePayment: (_req, params) => {
          const order = orders.get(String(params.outer_trade_no))
          if (!order) throw Object.assign(new Error('no such order'), { status: 404 })
          return { ...params, buyer_open_id: BUYER, total_amount: String(order.totalAmount), reason: order.title }
        },
        findOrder: (outerTradeNo) => orders.get(outerTradeNo) ?? null,
        onPaid: (p) => { paid.push(p) },
      }))
    })
    afterEach(async () => {
      await sandbox.close()
      server.closeAllConnections()
      server.close()
    })

    /** The forged body, built from a notification the attacker saw: its own fields, split at the attach. */
    function forge(seen: Fields, victim: string, futureTimestamp: string): string {
      return encodeForm({
        appid: seen.appid,
        attach: 'x',
        outer_trade_no: victim,
        timestamp: futureTimestamp,
        total_amount: '8888.00',
        trade_no: `1&buyer_open_id=${seen.buyer_open_id}&outer_trade_no=${seen.outer_trade_no}` +
          `&timestamp=${seen.timestamp}&total_amount=${seen.total_amount}&trade_no=${seen.trade_no}`,
        sign: seen.sign,
      })
    }

    it('the buyer pays 0.01 with a crafted attach and re-posts the notification as VICTIM 8888.00 → refused, onPaid never sees VICTIM', async () => {
      const cheap = `CHEAP${seq}`
      const victim = `VICTIM${seq}`
      const future = String(Math.floor(Date.now() / 1000) + 240)
      const attach = `x&outer_trade_no=${victim}&timestamp=${future}&total_amount=8888.00&trade_no=1`
      const res = await request(base).post('/gat/pay').send({ outer_trade_no: cheap, asset_type: '1', asset_open_id: ASSET, attach })
      expect(res.status, JSON.stringify(res.body)).to.equal(200)
      const payment = await sandbox.waitForAcknowledged(cheap)

      // What reached Guanaitong carries no raw & or =, and the shop gets its attach back as it passed it.
      expect(payment.params.attach).to.not.match(/[&=]/)
      expect(paid.map((p) => [p.outerTradeNo, p.totalAmount, p.attach])).to.deep.equal([[cheap, '0.01', attach]])

      // The attacker replays the seen notification, split at the attach, with its sign.
      const seen = payment.attempts[0].fields
      const forged = await request(base).post('/gat/notify').type('form').send(forge(seen, victim, future))
      expect(forged.text).to.equal('fail')
      expect(forged.status).to.equal(400)
      expect(logger.reasons()).to.include('RESERVED_CHARACTER')
      expect(paid.map((p) => p.outerTradeNo)).to.deep.equal([cheap])
    })

    it('a notification Guanaitong signed over a raw & in attach (a pay sent without this client) → refused, and so is its re-split', async () => {
      const cheap = `CHEAP${seq}`
      const victim = `VICTIM${seq}`
      const future = String(Math.floor(Date.now() / 1000) + 240)
      const attach = `x&outer_trade_no=${victim}&timestamp=${future}&total_amount=8888.00&trade_no=1`
      // The sandbox notifies as Guanaitong would for a pay whose attach carried the raw characters.
      const answered = new Promise<SandboxAttempt>((resolve) => sandbox.once('attempt', ({ attempt }) => resolve(attempt)))
      sandbox.sendNotification({ outerTradeNo: cheap, totalAmount: '0.01', buyerOpenId: BUYER, attach, notifyUrl: `${base}/gat/notify` })
      const first = await answered
      expect(first.fields.attach).to.equal(attach)
      expect(first.body).to.equal('fail')
      expect(first.status).to.equal(400)

      const forged = await request(base).post('/gat/notify').type('form').send(forge(first.fields, victim, future))
      expect(forged.text).to.equal('fail')
      expect(paid).to.deep.equal([])
      expect(logger.reasons().every((r) => r === 'RESERVED_CHARACTER')).to.equal(true)
      expect(logger.lines.filter((l) => l.context?.reason === 'RESERVED_CHARACTER').map((l) => l.level)).to.include('warn')
    })
  })
}
