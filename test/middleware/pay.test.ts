import { expect } from 'chai'
import request from 'supertest'
import { GatError, OUTER_TRADE_NO_EXISTS_CODE, ParamError } from '../../src/errors'
import { guanaitong } from '../../src/router'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import type { GatClient, GuanaitongOptions, PayParams } from '../../src/types'
import { APP_ID, EXPRESS_VERSIONS, SECRET, recordingLogger } from '../helpers'

/** A client whose pay records what it was given and answers as each test scripts. */
function scriptedClient(answer: (params: PayParams) => Promise<string>) {
  const sent: PayParams[] = []
  const client: GatClient = {
    getToken: async () => 't',
    request: async () => { throw new Error('not used') },
    pay: async (params) => { sent.push(params); return answer(params) },
  }
  return { client, sent }
}

const order = { reason: '午餐', outer_trade_no: 'O100001', asset_type: '1', asset_open_id: 'a5fad9894edd0d2202639248fa0461ec' }

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`pay route (${name})`, () => {
    function setup(answer: (p: PayParams) => Promise<string>, extra: Record<string, unknown> = {}) {
      const { client, sent } = scriptedClient(answer)
      const logger = recordingLogger()
      const app = express()
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, client, logger, notifyUrl: 'https://shop.example/gat/notify',
        onPaid: () => {},
        preparePayment: (_req, params) => ({ ...params, buyer_open_id: 'from-session', total_amount: '12.50' }),
        ...extra,
      }))
      return { app, sent, logger }
    }

    it('sends the prepared params with notify_url from the options and answers {trade_no}', async () => {
      const { app, sent } = setup(async () => '2020070220000015')
      const res = await request(app).post('/gat/pay').send({ ...order, total_amount: '0.01', notify_url: 'https://evil.example' })
      expect(res.status).to.equal(200)
      expect(res.body).to.deep.equal({ trade_no: '2020070220000015', outer_trade_no: 'O100001' })
      expect(sent[0]).to.include({ buyer_open_id: 'from-session', total_amount: '12.50', notify_url: 'https://shop.example/gat/notify' })
    })

    it('takes a form body as well as JSON', async () => {
      const { app, sent } = setup(async () => '2020070220000016')
      const res = await request(app).post('/gat/pay').type('form').send(order)
      expect(res.status).to.equal(200)
      expect(sent[0]).to.include({ outer_trade_no: 'O100001', reason: '午餐' })
    })

    it('answers 400 {code, msg, field} for invalid input', async () => {
      const { app } = setup(async (p) => { throw new ParamError('outer_trade_no', 'must be 2–22 characters') })
      const res = await request(app).post('/gat/pay').send({ ...order, outer_trade_no: 'x' })
      expect(res.status).to.equal(400)
      expect(res.body).to.deep.equal({ code: 'INVALID_PARAM', msg: 'outer_trade_no must be 2–22 characters', field: 'outer_trade_no' })
    })

    it('answers 400 for a malformed JSON body without calling the client', async () => {
      const { app, sent } = setup(async () => 'x')
      const res = await request(app).post('/gat/pay').set('Content-Type', 'application/json').send('{"a":')
      expect(res.status).to.equal(400)
      expect(res.body.code).to.equal('entity.parse.failed')
      expect(sent).to.have.length(0)
    })

    const upstream: Array<[string, GatError, number]> = [
      ['a reused outer_trade_no', new GatError({ kind: 'api', code: OUTER_TRADE_NO_EXISTS_CODE, msg: '外部交易号已存在', status: 200, path: '/p' }), 409],
      ['another API error', new GatError({ kind: 'api', code: 1001, msg: 'nope', status: 200, path: '/p', traceId: 'tr-1' }), 502],
      ['an HTML error page', new GatError({ kind: 'http', code: null, msg: '502 Bad Gateway', status: 502, path: '/p' }), 502],
      ['a timeout', new GatError({ kind: 'timeout', code: null, msg: 'no answer', status: 0, path: '/p', ambiguous: true }), 504],
    ]
    for (const [what, err, status] of upstream) {
      it(`answers ${status} for ${what}`, async () => {
        const { app } = setup(async () => { throw err })
        const res = await request(app).post('/gat/pay').send(order)
        expect(res.status).to.equal(status)
        expect(res.body.code).to.equal(err.code)
        expect(res.body.outer_trade_no).to.equal('O100001')
        if (status === 504) expect(res.body.ambiguous).to.equal(true)
      })
    }

    it('answers 503 when the client fails before sending (e.g. its token cache is down)', async () => {
      const { app } = setup(async () => { throw new Error('redis: connection is closed') })
      const res = await request(app).post('/gat/pay').send(order)
      expect(res.status).to.equal(503)
      expect(res.body).to.include({ code: 'UNAVAILABLE', outer_trade_no: 'O100001' })
      expect(JSON.stringify(res.body)).to.not.contain('redis')
    })

    it('passes a 4xx thrown by preparePayment through (e.g. not logged in), and hides other errors', async () => {
      const denied = setup(async () => 'x', {
        preparePayment: () => { throw Object.assign(new Error('log in first'), { status: 401 }) },
      })
      const res = await request(denied.app).post('/gat/pay').send(order)
      expect(res.status).to.equal(401)
      expect(res.body.msg).to.equal('log in first')
      const broken = setup(async () => 'x', { preparePayment: () => { throw new Error('secret db detail') } })
      const res2 = await request(broken.app).post('/gat/pay').send(order)
      expect(res2.status).to.equal(500)
      expect(JSON.stringify(res2.body)).to.not.contain('secret db detail')
      expect(broken.logger.lines.some((l) => l.level === 'error' && /secret db detail/.test(l.message))).to.equal(true)
    })
  })
}

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`pay route without the notifyUrl option, against the sandbox (${name})`, () => {
    let sandbox: Sandbox
    before(async () => {
      sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET })
      await sandbox.start()
    })
    after(() => sandbox.close())

    function app(extra: Partial<GuanaitongOptions> = {}) {
      const server = express()
      server.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, baseUrl: sandbox.url, logger: recordingLogger(), onPaid: () => {}, ...extra,
      }))
      return server
    }
    let seq = 0
    const fresh = () => ({ ...order, outer_trade_no: `NU${Date.now() % 1e8}${++seq}` })
    const attacker = 'https://attacker.example/collect'

    it('drops the browser\'s notify_url before preparePayment sees the params and before the pay is sent', async () => {
      const seen: Array<Partial<PayParams>> = []
      const server = app({
        preparePayment: (_req, params) => {
          seen.push({ ...params })
          return { ...params, buyer_open_id: 'from-session', total_amount: '12.50' }
        },
      })
      const body = fresh()
      const res = await request(server).post('/gat/pay').send({ ...body, notify_url: attacker })
      expect(res.status).to.equal(200)
      expect(seen).to.have.length(1)
      expect(seen[0]).to.include({ outer_trade_no: body.outer_trade_no }).and.not.have.property('notify_url')
      const payment = sandbox.getPayment(body.outer_trade_no)
      expect(payment?.params).to.include({ outer_trade_no: body.outer_trade_no, total_amount: '12.50' })
      expect(payment?.params).to.not.have.property('notify_url')
      expect(payment?.notifyUrl).to.equal(null)
    })

    it('drops it from a form body sent straight through (no preparePayment)', async () => {
      const body = { ...fresh(), buyer_open_id: 'b1', total_amount: '3.00' }
      const res = await request(app()).post('/gat/pay').type('form').send({ ...body, notify_url: attacker })
      expect(res.status).to.equal(200)
      const payment = sandbox.getPayment(body.outer_trade_no)
      expect(payment?.params).to.include({ outer_trade_no: body.outer_trade_no, buyer_open_id: 'b1' })
      expect(payment?.params).to.not.have.property('notify_url')
      expect(payment?.notifyUrl).to.equal(null)
    })
  })
}
