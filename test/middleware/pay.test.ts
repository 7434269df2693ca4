import { expect } from 'chai'
import request from 'supertest'
import { GatError, OUTER_TRADE_NO_EXISTS_CODE, ParamError } from '../../src/kernel/errors'
import { tokenFailure } from '../../src/client/client'
import { guanaitong } from '../../src/adapters/express/router'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import type { GatClient, GuanaitongOptions, PayParams } from '../../src/kernel/types'
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
      expect(res.body).to.deep.equal({ trade_no: '2020070220000015', outer_trade_no: 'O100001', settled: true })
      expect(sent[0]).to.include({ buyer_open_id: 'from-session', total_amount: '12.50', notify_url: 'https://shop.example/gat/notify' })
    })

    it('takes a form body only with payFormBodies: true', async () => {
      const { app, sent } = setup(async () => '2020070220000016', { payFormBodies: true })
      const res = await request(app).post('/gat/pay').type('form').send(order)
      expect(res.status).to.equal(200)
      expect(sent[0]).to.include({ outer_trade_no: 'O100001', reason: '午餐' })
    })

    it('answers 400 {code, msg, field} for invalid input', async () => {
      const { app } = setup(async (p) => { throw new ParamError('asset_open_id', 'must be at most 32 characters') })
      const res = await request(app).post('/gat/pay').send({ ...order, asset_open_id: 'x'.repeat(33) })
      expect(res.status).to.equal(400)
      expect(res.body).to.deep.equal({ code: 'INVALID_PARAM', msg: 'asset_open_id must be at most 32 characters', field: 'asset_open_id' })
    })

    for (const [what, value] of [['missing', undefined], ['a number', 1000000005], ['one character', 'x'], ['blank', '  ']] as const) {
      it(`answers 400 naming outer_trade_no when it is ${what}, before preparePayment sees it`, async () => {
        const seen: unknown[] = []
        const { app, sent } = setup(async () => 'x', {
          preparePayment: (_req: unknown, params: { outer_trade_no: string }) => {
            seen.push(params.outer_trade_no)
            return params
          },
        })
        const res = await request(app).post('/gat/pay').send({ ...order, outer_trade_no: value })
        expect(res.status).to.equal(400)
        expect(res.body).to.include({ code: 'INVALID_PARAM', field: 'outer_trade_no' })
        expect(seen, 'preparePayment was not called').to.deep.equal([])
        expect(sent).to.have.length(0)
      })
    }

    it('hands preparePayment the checked outer_trade_no as a string', async () => {
      const seen: unknown[] = []
      const { app } = setup(async () => 'T1', {
        preparePayment: (_req: unknown, params: Record<string, unknown> & { outer_trade_no: string }) => {
          seen.push(params.outer_trade_no.toUpperCase())
          return { ...params, buyer_open_id: 'from-session', total_amount: '12.50' }
        },
      })
      await request(app).post('/gat/pay').send({ ...order, outer_trade_no: 'o100002' }).expect(200)
      expect(seen).to.deep.equal(['O100002'])
    })

    it('answers 400 for a malformed JSON body without calling the client', async () => {
      const { app, sent } = setup(async () => 'x')
      const res = await request(app).post('/gat/pay').set('Content-Type', 'application/json').send('{"a":')
      expect(res.status).to.equal(400)
      expect(res.body.code).to.equal('entity.parse.failed')
      expect(sent).to.have.length(0)
    })

    describe('what reaches Guanaitong (issue 9: allowlist, re-split, CSRF)', () => {
      for (const [what, type, body] of [
        ['a form body', 'application/x-www-form-urlencoded', 'outer_trade_no=O100001&asset_type=1'],
        ['a text/plain body (what a cross-site form with enctype=text/plain sends)', 'text/plain', '{"outer_trade_no":"O100001"}'],
        ['a multipart body', 'multipart/form-data; boundary=x', '--x--'],
      ] as const) {
        it(`refuses ${what} by default with 415, calling neither preparePayment nor the client`, async () => {
          let prepared = 0
          const { app, sent } = setup(async () => 'x', { preparePayment: (_req: unknown, p: object) => { prepared++; return p } })
          const res = await request(app).post('/gat/pay').set('Content-Type', type).send(body)
          expect(res.status).to.equal(415)
          expect(res.body.code).to.equal('UNSUPPORTED_MEDIA_TYPE')
          expect(prepared).to.equal(0)
          expect(sent).to.have.length(0)
        })
      }

      it('a request without a body answers 400 naming outer_trade_no, before preparePayment runs', async () => {
        let prepared = 0
        const { app, sent } = setup(async () => 'x', { preparePayment: () => { prepared++; return { ...order, buyer_open_id: 'b', total_amount: '1.00' } } })
        const res = await request(app).post('/gat/pay')
        expect(res.status).to.equal(400)
        expect(res.body.field).to.equal('outer_trade_no')
        expect(prepared).to.equal(0)
        expect(sent).to.deep.equal([])
      })

      for (const key of ['NOTIFY_URL', 'notify_url ', ' attach', 'Total_Amount', 'appid', 'sign', 'access_token', 'callback', '__proto__']) {
        it(`answers 400 naming an unknown body key ${JSON.stringify(key)}, before preparePayment runs`, async () => {
          let prepared = 0
          const { app, sent } = setup(async () => 'x', { preparePayment: (_req: unknown, p: object) => { prepared++; return p } })
          const body = JSON.parse(`{${JSON.stringify(key)}: "v", "outer_trade_no": "O100001"}`)
          const res = await request(app).post('/gat/pay').send(body)
          expect(res.status).to.equal(400)
          expect(res.body).to.include({ code: 'INVALID_PARAM', field: key })
          expect(res.body.msg).to.contain('extraPayParams')
          expect(prepared).to.equal(0)
          expect(sent).to.have.length(0)
        })
      }

      it('passes trade_info (the seed example\'s parameter) and the names listed in extraPayParams', async () => {
        const { app, sent } = setup(async () => 'x', { extraPayParams: ['memo'] })
        const res = await request(app).post('/gat/pay').send({ ...order, trade_info: { thirdTradeNo: '100001' }, memo: 'm' })
        expect(res.status).to.equal(200)
        expect(sent[0]).to.deep.include({ trade_info: { thirdTradeNo: '100001' }, memo: 'm' })
      })

      it('holds what preparePayment returns to the same names: an unknown key is a 400 naming it, nothing sent', async () => {
        const { app, sent } = setup(async () => 'x', { preparePayment: (_req: unknown, p: object) => ({ ...p, buyer_open_id: 'b', total_amount: '1', debug_note: 'x' }) })
        const res = await request(app).post('/gat/pay').send(order)
        expect(res.status).to.equal(400)
        expect(res.body.field).to.equal('debug_note')
        expect(sent).to.have.length(0)
      })

      for (const [field, value] of [['reason', '午餐&total_amount=0.01'], ['outer_trade_no', 'O1=2'], ['asset_open_id', 'a&b']] as const) {
        it(`answers 400 naming ${field} when it holds a raw & or = (${JSON.stringify(value)}), nothing sent`, async () => {
          const { app, sent } = setup(async () => 'x')
          const res = await request(app).post('/gat/pay').send({ ...order, [field]: value })
          expect(res.status).to.equal(400)
          expect(res.body).to.include({ code: 'INVALID_PARAM', field })
          expect(res.body.msg).to.match(/must not contain "&" or "="/)
          expect(sent).to.have.length(0)
        })
      }

      it('leaves attach to the client, which percent-encodes it', async () => {
        const { app, sent } = setup(async () => 'x')
        const res = await request(app).post('/gat/pay').send({ ...order, attach: 'a&b=c' })
        expect(res.status).to.equal(200)
        expect(sent[0].attach).to.equal('a&b=c')
      })

      it('warns once, when built, that without notifyUrl Guanaitong will not notify', () => {
        const { logger } = setup(async () => 'x', { notifyUrl: undefined })
        expect(logger.lines.filter((l) => l.level === 'warn' && /notifyUrl is not set/.test(l.message))).to.have.length(1)
        const withUrl = setup(async () => 'x')
        expect(withUrl.logger.lines.filter((l) => /notifyUrl is not set/.test(l.message))).to.have.length(0)
      })

      it('logs a malformed JSON body\'s echo escaped: a body cannot write a log line of its own', async () => {
        const { app, logger } = setup(async () => 'x')
        const res = await request(app).post('/gat/pay').set('Content-Type', 'application/json')
          .send('x\n[express-guanaitong] payment O100001 processed')
        expect(res.status).to.equal(400)
        const line = logger.lines.find((l) => /pay answered 400/.test(l.message))
        expect(line, 'the refusal is logged').to.not.equal(undefined)
        expect(line!.message).to.not.match(/[\n\r]/)
      })
    })

    const upstream: Array<[string, GatError, number]> = [
      ['a reused outer_trade_no', new GatError({ kind: 'api', code: OUTER_TRADE_NO_EXISTS_CODE, msg: '外部交易号已存在', status: 200, path: '/p' }), 409],
      ['another API error', new GatError({ kind: 'api', code: 1001, msg: 'nope', status: 200, path: '/p', traceId: 'tr-1' }), 502],
      ['an HTML error page', new GatError({ kind: 'http', code: null, msg: '502 Bad Gateway', status: 502, path: '/p' }), 502],
      ['a timeout', new GatError({ kind: 'timeout', code: null, msg: 'no answer', status: 0, path: '/p' }), 504],
    ]
    for (const [what, err, status] of upstream) {
      it(`answers ${status} for ${what}, ambiguous only when no well-formed answer came`, async () => {
        const { app } = setup(async () => { throw err })
        const res = await request(app).post('/gat/pay').send(order)
        expect(res.status).to.equal(status)
        expect(res.body.code).to.equal(err.code)
        expect(res.body.outer_trade_no).to.equal('O100001')
        expect(res.body.ambiguous).to.equal(err.kind !== 'api')
      })
    }

    it('answers 503 "nothing was charged" when the client failed before sending (e.g. its token cache is down)', async () => {
      const cacheDown = tokenFailure(new Error('redis: connection is closed'), '/platformDealer/employee/pay')
      const { app } = setup(async () => { throw cacheDown })
      const res = await request(app).post('/gat/pay').send(order)
      expect(res.status).to.equal(503)
      expect(res.body).to.include({ code: 'UNAVAILABLE', outer_trade_no: 'O100001', ambiguous: false })
      expect(res.body.msg).to.match(/nothing was charged/)
      expect(JSON.stringify(res.body)).to.not.contain('redis')
    })

    it('a custom client that rejects with something other than a GatError → 502 ambiguous: nobody knows whether it paid', async () => {
      for (const thrown of [new Error('wrapper broke'), undefined, null, 'text', Object.create(null)]) {
        const { app, logger } = setup(async () => { throw thrown })
        const res = await request(app).post('/gat/pay').send(order)
        expect(res.status).to.equal(502)
        expect(res.body).to.include({ code: 'UNKNOWN', ambiguous: true, outer_trade_no: 'O100001' })
        expect(logger.lines.filter((l) => l.level === 'error')).to.have.length(1)
      }
    })

    it('preparePayment rejecting with undefined, null or a non-Error → 500, and the server keeps answering', async () => {
      const rejections: unknown[] = [undefined, null, 'nope', 42, { status: 'x' }, Object.create(null), Symbol('s')]
      for (const thrown of rejections) {
        const { app, sent, logger } = setup(async () => 'x', { preparePayment: () => Promise.reject(thrown) })
        const res = await request(app).post('/gat/pay').send(order)
        expect(res.status, String(typeof thrown)).to.equal(500)
        expect(res.body).to.deep.equal({ code: 'INTERNAL', msg: 'the pay request could not be prepared; see the server log' })
        expect(sent).to.have.length(0)
        expect(logger.lines.filter((l) => l.level === 'error')).to.have.length(1)
      }
      const { app } = setup(async () => '2020070220000099', { preparePayment: () => { throw undefined } })
      expect((await request(app).post('/gat/pay').send(order)).status).to.equal(500)
    })

    it('a logger that throws does not keep the answer from the cashier page', async () => {
      const { client } = scriptedClient(async () => { throw new ParamError('reason', 'is required') })
      const throwing = () => { throw new Error('logger down') }
      const app = express()
      app.use('/gat', guanaitong({
        appId: APP_ID, appSecret: SECRET, client, onPaid: () => {},
        logger: { warn: throwing, error: throwing, info: throwing, debug: throwing },
        preparePayment: (_req, params) => params,
      }))
      const res = await request(app).post('/gat/pay').send(order)
      expect(res.status).to.equal(400)
      expect(res.body.field).to.equal('reason')
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

    it('names a refusal from preparePayment by its status (UNAUTHORIZED, NOT_FOUND, CONFLICT), keeping its message', async () => {
      for (const [status, code] of [[401, 'UNAUTHORIZED'], [403, 'FORBIDDEN'], [404, 'NOT_FOUND'], [409, 'CONFLICT']] as const) {
        const { app } = setup(async () => 'x', {
          preparePayment: () => { throw Object.assign(new Error('这个订单已支付 this order is paid already'), { status }) },
        })
        const res = await request(app).post('/gat/pay').send(order)
        expect([res.status, res.body]).to.deep.equal([status, { code, msg: '这个订单已支付 this order is paid already' }])
      }
      const { app } = setup(async () => 'x', { preparePayment: () => { throw Object.assign(new Error('gone'), { status: 409, code: 'ORDER_PAID' }) } })
      expect((await request(app).post('/gat/pay').send(order)).body).to.deep.equal({ code: 'ORDER_PAID', msg: 'gone' })
    })

    it('answers the browser without the package\'s log prefix (a 415 is logged with it)', async () => {
      const { app, logger } = setup(async () => 'x')
      const res = await request(app).post('/gat/pay').set('Content-Type', 'text/plain').send('{}')
      expect(res.status).to.equal(415)
      expect(res.body.msg).to.match(/^the pay route takes JSON bodies/)
      expect(logger.lines.some((l) => l.message.includes('[express-guanaitong] the pay route takes JSON bodies'))).to.equal(true)
    })

    for (const [what, prepare] of [
      ['nothing (it filled in the object it was given)', (_req: unknown, params: Record<string, unknown>) => {
        Object.assign(params, { buyer_open_id: 'from-session', total_amount: '12.50' })
      }],
      ['null', () => null],
    ] as const) {
      it(`refuses a pay whose preparePayment returned ${what}: 500, the body's buyer and amount never sent`, async () => {
        const { app, sent, logger } = setup(async () => 'x', { preparePayment: prepare })
        const res = await request(app).post('/gat/pay').send({ ...order, buyer_open_id: 'someone-else', total_amount: '0.01' })
        expect(res.status).to.equal(500)
        expect(res.body.code).to.equal('INTERNAL')
        expect(sent).to.have.length(0)
        expect(logger.lines.filter((l) => l.level === 'error' && /preparePayment returned/.test(l.message))).to.have.length(1)
      })
    }
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

    it('drops it from a form body (payFormBodies) sent straight through (no preparePayment)', async () => {
      const body = { ...fresh(), buyer_open_id: 'b1', total_amount: '3.00' }
      const res = await request(app({ payFormBodies: true })).post('/gat/pay').type('form').send({ ...body, notify_url: attacker })
      expect(res.status).to.equal(200)
      const payment = sandbox.getPayment(body.outer_trade_no)
      expect(payment?.params).to.include({ outer_trade_no: body.outer_trade_no, buyer_open_id: 'b1' })
      expect(payment?.params).to.not.have.property('notify_url')
      expect(payment?.notifyUrl).to.equal(null)
    })
  })
}
