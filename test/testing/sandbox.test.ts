import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import { ConfigError, OUTER_TRADE_NO_EXISTS_CODE, ParamError, TOKEN_INVALID_CODE } from '../../src/kernel/errors'
import { sign, verifySign } from '../../src/kernel/signature'
import {
  createSandbox,
  DEFAULT_RETRY_SCHEDULE,
  PAY_PATH,
  SANDBOX_CODES,
  TOKEN_PATH,
  type Sandbox,
  type SandboxOptions,
} from '../../src/testing/sandbox'
import { encodeForm, signNotification } from '../../src/testing/sign-notification'
import type { Fields, SignAlgorithm } from '../../src/kernel/types'

const APP_ID = '20110698'
const SECRET = 'sandbox-secret'
/** Makes the default schedule (about 11 h) last about 0.4 s. */
const FAST = 1e-5

interface Reply {
  status: number
  traceId: string | null
  contentType: string | null
  json: { code: number; msg: string; data: any }
}

let sandbox: Sandbox
let clock: () => number = Date.now

async function open(options: SandboxOptions = {}): Promise<Sandbox> {
  clock = options.now ?? Date.now
  sandbox = createSandbox({ timeScale: FAST, ...options })
  await sandbox.start()
  return sandbox
}

function nowSec(offsetSec = 0): string {
  return String(Math.floor(clock() / 1000) + offsetSec)
}

/** POSTs signed parameters; `query` goes into the query string and is signed too. */
async function call(
  path: string,
  body: Fields,
  opts: { query?: Fields; secret?: string; algorithm?: SignAlgorithm; unsigned?: boolean; signal?: AbortSignal } = {},
): Promise<Reply> {
  const query = opts.query ?? {}
  const all = { ...query, ...body }
  const signed = opts.unsigned ? body : { ...body, sign: sign(all, opts.secret ?? SECRET, opts.algorithm ?? 'sha1') }
  const qs = Object.keys(query).length ? `?${encodeForm(query)}` : ''
  const res = await fetch(`${sandbox.url}${path}${qs}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: encodeForm(signed),
    signal: opts.signal,
  })
  return { status: res.status, traceId: res.headers.get('x-trace-id'), contentType: res.headers.get('content-type'), json: (await res.json()) as Reply['json'] }
}

function tokenParams(extra: Fields = {}): Fields {
  return { appid: APP_ID, timestamp: nowSec(), version: '1.0.0', grant_type: 'client_credential', ...extra }
}

async function token(): Promise<string> {
  const reply = await call(TOKEN_PATH, tokenParams())
  expect(reply.json.code, reply.json.msg).to.equal(0)
  return reply.json.data.access_token
}

let tradeCounter = 0
function payParams(accessToken: string, extra: Fields = {}): Fields {
  tradeCounter += 1
  return {
    appid: APP_ID,
    timestamp: nowSec(),
    version: '1.0.0',
    access_token: accessToken,
    buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
    reason: '午餐支付-金额:100.01积分',
    total_amount: '100.01',
    outer_trade_no: `T${Date.now() % 1_000_000}${tradeCounter}`,
    asset_type: '1',
    asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
    ...extra,
  }
}

interface Received {
  fields: Fields
  contentType: string | undefined
  raw: string
}

interface Receiver {
  url: string
  received: Received[]
  close(): Promise<void>
}

const receivers: Server[] = []

/** A shop's notify endpoint. `answer` gets the 1-based delivery number; null leaves the request hanging. */
async function receiver(answer: (n: number, fields: Fields) => string | null | { status: number; body: string }): Promise<Receiver> {
  const received: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      const fields = Object.fromEntries(new URLSearchParams(raw)) as Fields
      received.push({ fields, contentType: req.headers['content-type'], raw })
      const a = answer(received.length, fields)
      if (a === null) return
      const { status, body } = typeof a === 'string' ? { status: 200, body: a } : a
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end(body)
    })
  })
  receivers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/notify`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

afterEach(async () => {
  await sandbox?.close()
  for (const server of receivers.splice(0)) {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  clock = Date.now
})

describe('sandbox: token and pay', () => {
  it('creates a token, takes a signed pay, answers JSON with x-trace-id and a 16-digit trade number', async () => {
    await open()
    const events: string[] = []
    sandbox.on('token', () => events.push('token'))
    sandbox.on('pay', ({ payment }) => events.push(`pay ${payment.outerTradeNo}`))

    const tok = await call(TOKEN_PATH, tokenParams())
    expect(tok.status).to.equal(200)
    expect(tok.contentType).to.match(/^application\/json/)
    expect(tok.traceId).to.match(/^[0-9a-f]{16}$/)
    expect(tok.json).to.deep.include({ code: 0, msg: 'OK' })
    expect(tok.json.data.expires_in).to.equal(3600)
    expect(tok.json.data.access_token).to.match(/^[0-9a-f]{32}$/)

    const params = payParams(tok.json.data.access_token, { attach: '测试', trade_info: '{"thirdTradeNo":"100001"}' })
    const pay = await call(PAY_PATH, params)
    expect(pay.json.code, pay.json.msg).to.equal(0)
    expect(pay.json.msg).to.equal('OK')
    expect(pay.json.data).to.be.a('string').and.match(/^\d{16}$/)
    expect(pay.traceId).to.match(/^[0-9a-f]{16}$/)

    const payment = sandbox.getPayment(params.outer_trade_no)!
    expect(payment).to.include({
      tradeNo: pay.json.data,
      buyerOpenId: params.buyer_open_id,
      totalAmount: '100.01',
      totalFen: 10001,
      assetType: '1',
      attach: '测试',
      notifyUrl: null,
      outcome: 'paid',
      state: 'unnotified',
      source: 'pay',
    })
    expect(payment.params.trade_info).to.equal('{"thirdTradeNo":"100001"}')
    expect(sandbox.listPayments()).to.have.length(1)
    expect(sandbox.stats).to.include({ tokenCalls: 1, tokensIssued: 1, payCalls: 1, paymentsCreated: 1, requests: 2 })
    expect(events).to.deep.equal(['token', `pay ${params.outer_trade_no}`])
  })

  it('refuses a wrongly signed request (token and pay) with the sandbox BAD_SIGN code', async () => {
    await open()
    const badToken = await call(TOKEN_PATH, tokenParams(), { secret: 'wrong-secret' })
    expect(badToken.json).to.deep.include({ code: SANDBOX_CODES.BAD_SIGN, data: null })
    const missing = await call(TOKEN_PATH, tokenParams(), { unsigned: true })
    expect(missing.json.code).to.equal(SANDBOX_CODES.BAD_SIGN)
    expect(missing.json.msg).to.match(/^sign/)

    const accessToken = await token()
    const params = payParams(accessToken)
    const signed = { ...params, sign: sign(params, SECRET) }
    // Tampering after signing: the amount changes, the sign does not.
    const res = await fetch(`${sandbox.url}${PAY_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encodeForm({ ...signed, total_amount: '1.00' }),
    })
    const json = (await res.json()) as Reply['json']
    expect(json.code).to.equal(SANDBOX_CODES.BAD_SIGN)
    expect(sandbox.payments).to.have.length(0)
  })

  it('verifies sha256 and sha512 signatures whatever signType is, and refuses an unknown appid', async () => {
    await open()
    expect((await call(TOKEN_PATH, tokenParams(), { algorithm: 'sha256' })).json.code).to.equal(0)
    expect((await call(TOKEN_PATH, tokenParams(), { algorithm: 'sha512' })).json.code).to.equal(0)
    const other = await call(TOKEN_PATH, tokenParams({ appid: '999' }))
    expect(other.json.code).to.equal(SANDBOX_CODES.UNKNOWN_APPID)
    const grant = await call(TOKEN_PATH, tokenParams({ grant_type: 'password' }))
    expect(grant.json.code).to.equal(SANDBOX_CODES.INVALID_PARAM)
    expect(grant.json.msg).to.match(/^grant_type/)
  })

  it('accepts public parameters in the query string, refuses a key sent twice with different values', async () => {
    await open()
    const tok = await call(TOKEN_PATH, {}, { query: tokenParams() })
    expect(tok.json.code, tok.json.msg).to.equal(0)
    const accessToken = tok.json.data.access_token as string

    const all = payParams(accessToken)
    const { appid, timestamp, version, access_token, ...privateParams } = all
    const split = await call(PAY_PATH, privateParams, { query: { appid, timestamp, version, access_token } })
    expect(split.json.code, split.json.msg).to.equal(0)

    const same = payParams(accessToken)
    const dup = await call(PAY_PATH, same, { query: { appid: APP_ID, timestamp: same.timestamp } })
    expect(dup.json.code, dup.json.msg).to.equal(0)

    const conflicting = payParams(accessToken)
    const conflict = await call(PAY_PATH, conflicting, { query: { timestamp: String(Number(conflicting.timestamp) - 1) } })
    expect(conflict.json.code).to.equal(SANDBOX_CODES.INVALID_PARAM)
    expect(conflict.json.msg).to.match(/^timestamp .*query string and the body/)
  })

  it('refuses a stale or malformed timestamp with the sandbox BAD_TIMESTAMP code', async () => {
    await open()
    const stale = await call(TOKEN_PATH, tokenParams({ timestamp: nowSec(-301) }))
    expect(stale.json.code).to.equal(SANDBOX_CODES.BAD_TIMESTAMP)
    expect(stale.json.msg).to.match(/behind/)
    const future = await call(TOKEN_PATH, tokenParams({ timestamp: nowSec(400) }))
    expect(future.json.code).to.equal(SANDBOX_CODES.BAD_TIMESTAMP)
    const millis = await call(TOKEN_PATH, tokenParams({ timestamp: String(Date.now()) }))
    expect(millis.json.code).to.equal(SANDBOX_CODES.BAD_TIMESTAMP)
    const notDigits = await call(TOKEN_PATH, tokenParams({ timestamp: '1.5e9' }))
    expect(notDigits.json.code).to.equal(SANDBOX_CODES.BAD_TIMESTAMP)
    const within = await call(TOKEN_PATH, tokenParams({ timestamp: nowSec(-250) }))
    expect(within.json.code).to.equal(0)

    const accessToken = await token()
    const pay = await call(PAY_PATH, payParams(accessToken, { timestamp: nowSec(-3600) }))
    expect(pay.json.code).to.equal(SANDBOX_CODES.BAD_TIMESTAMP)
    expect(sandbox.payments).to.have.length(0)
  })

  it('answers 1000210004 for an expired, revoked or unknown token', async () => {
    let offset = 0
    await open({ now: () => Date.now() + offset, tokenTtlSec: 60 })
    const first = await token()
    expect((await call(PAY_PATH, payParams(first))).json.code).to.equal(0)

    offset = 61_000 // the token lived 60 s
    const expired = await call(PAY_PATH, payParams(first))
    expect(expired.json.code).to.equal(TOKEN_INVALID_CODE)
    expect(expired.json.msg).to.match(/expired/)
    expect(expired.json.data).to.equal(null)

    const second = await token()
    expect((await call(PAY_PATH, payParams(second))).json.code).to.equal(0)
    sandbox.expireTokens()
    const revoked = await call(PAY_PATH, payParams(second))
    expect(revoked.json.code).to.equal(TOKEN_INVALID_CODE)
    expect((await call(PAY_PATH, payParams('0'.repeat(32)))).json.code).to.equal(TOKEN_INVALID_CODE)
    expect((await call(PAY_PATH, payParams(await token()))).json.code).to.equal(0)
    expect(sandbox.payments).to.have.length(3)
  })

  it('answers 1001220005 外部交易号已存在 for a reused outer_trade_no', async () => {
    await open()
    const accessToken = await token()
    const params = payParams(accessToken, { outer_trade_no: 'ORDER-1' })
    expect((await call(PAY_PATH, params)).json.code).to.equal(0)
    const again = await call(PAY_PATH, payParams(accessToken, { outer_trade_no: 'ORDER-1', total_amount: '5' }))
    expect(again.json).to.deep.equal({ code: OUTER_TRADE_NO_EXISTS_CODE, msg: '外部交易号已存在', data: null })
    expect(sandbox.payments).to.have.length(1)
    expect(sandbox.getPayment('ORDER-1')!.totalAmount).to.equal('100.01')
  })

  it('checks every private parameter against the seed limits, naming the field', async () => {
    await open()
    const accessToken = await token()
    const cases: Array<[string, Fields]> = [
      ['buyer_open_id', { buyer_open_id: 'x'.repeat(33) }],
      ['buyer_open_id', { buyer_open_id: '' }],
      ['reason', { reason: '' }],
      ['reason', { reason: '因'.repeat(255) }],
      ['total_amount', { total_amount: '0' }],
      ['total_amount', { total_amount: '0.001' }],
      ['total_amount', { total_amount: '100000000.00' }],
      ['total_amount', { total_amount: '1e2' }],
      ['total_amount', { total_amount: '-1' }],
      ['outer_trade_no', { outer_trade_no: 'A' }],
      ['outer_trade_no', { outer_trade_no: 'A'.repeat(23) }],
      // The package's printable rule for order numbers, which the client applies too (src/kernel/fields.ts).
      ['outer_trade_no', { outer_trade_no: 'AB\u0000C' }],
      ['outer_trade_no', { outer_trade_no: 'AB\u202eC' }],
      ['outer_trade_no', { outer_trade_no: 'ABC ' }],
      ['asset_type', { asset_type: '2' }],
      ['asset_open_id', { asset_open_id: 'x'.repeat(33) }],
      ['notify_url', { notify_url: `http://shop.example/${'n'.repeat(240)}` }],
      ['notify_url', { notify_url: 'ftp://shop.example/notify' }],
      ['attach', { attach: 'a'.repeat(101) }],
      ['access_token', { access_token: '' }],
    ]
    for (const [field, extra] of cases) {
      const reply = await call(PAY_PATH, payParams(accessToken, extra))
      expect(reply.json.code, `${field} ${JSON.stringify(extra).slice(0, 60)}`).to.equal(SANDBOX_CODES.INVALID_PARAM)
      expect(reply.json.msg).to.satisfy((m: string) => m.startsWith(`${field} `), reply.json.msg)
      expect(reply.json.data).to.equal(null)
    }
    expect(sandbox.payments).to.have.length(0)
    expect(sandbox.stats.payCalls).to.equal(cases.length)

    // The limits themselves are accepted; lengths count characters, not bytes.
    const edge = payParams(accessToken, {
      buyer_open_id: 'b'.repeat(32),
      reason: '因'.repeat(254),
      total_amount: '99999999.99',
      outer_trade_no: 'O'.repeat(22),
      asset_type: '4',
      asset_open_id: 'a'.repeat(32),
      attach: '附'.repeat(100),
    })
    expect((await call(PAY_PATH, edge)).json.code).to.equal(0)
    const small = payParams(accessToken, { total_amount: '0.01', outer_trade_no: 'OK' })
    expect((await call(PAY_PATH, small)).json.code).to.equal(0)
  })

  it('answers 404 JSON for unknown paths and 405 for GET', async () => {
    await open()
    const res = await fetch(`${sandbox.url}/no/such/api`, { method: 'POST' })
    expect(res.status).to.equal(404)
    expect(res.headers.get('x-trace-id')).to.be.a('string')
    expect(((await res.json()) as Reply['json']).code).to.equal(SANDBOX_CODES.NOT_FOUND)
    const get = await fetch(`${sandbox.url}${TOKEN_PATH}`)
    expect(get.status).to.equal(405)
    expect(((await get.json()) as Reply['json']).code).to.equal(SANDBOX_CODES.METHOD_NOT_ALLOWED)
    const json = await fetch(`${sandbox.url}${TOKEN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(tokenParams()),
    })
    expect(((await json.json()) as Reply['json']).code).to.equal(SANDBOX_CODES.BAD_REQUEST)
  })

  it('refuses ambiguous forms: a repeated key (INVALID_PARAM), a bad escape or invalid UTF-8 (BAD_REQUEST)', async () => {
    await open()
    const post = async (body: string | Buffer) => {
      const res = await fetch(`${sandbox.url}${TOKEN_PATH}`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
      })
      return (await res.json()) as Reply['json']
    }
    const form = encodeForm(signNotification(tokenParams(), SECRET))
    expect((await post(`${form}&appid=other`)).code).to.equal(SANDBOX_CODES.INVALID_PARAM)
    expect((await post(`${form}&x=%zz`)).code).to.equal(SANDBOX_CODES.BAD_REQUEST)
    expect((await post(Buffer.concat([Buffer.from(`${form}&x=`), Buffer.from([0xff])]))).code).to.equal(SANDBOX_CODES.BAD_REQUEST)
    expect((await post(form)).code).to.equal(0)
  })
})

describe('sandbox: notifications', () => {
  it('delivers a signed form notification with a fresh timestamp and sign on every attempt', async () => {
    let offset = 0
    const shop = await receiver((n) => {
      offset += 60_000 // a minute passes between attempts
      return n < 3 ? 'fail' : 'success'
    })
    await open({ now: () => Date.now() + offset })
    const accessToken = await token()
    const params = payParams(accessToken, { notify_url: shop.url, attach: 'a=1&b=测试', total_amount: '100' })
    const pay = await call(PAY_PATH, params)
    expect(pay.json.code).to.equal(0)

    const payment = await sandbox.waitForAcknowledged(params.outer_trade_no)
    expect(shop.received).to.have.length(3)
    for (const { fields, contentType } of shop.received) {
      expect(contentType).to.equal('application/x-www-form-urlencoded')
      expect(Object.keys(fields).sort()).to.deep.equal(
        ['appid', 'attach', 'buyer_open_id', 'outer_trade_no', 'sign', 'timestamp', 'total_amount', 'trade_no'],
      )
      expect(fields).to.include({
        appid: APP_ID,
        outer_trade_no: params.outer_trade_no,
        buyer_open_id: params.buyer_open_id,
        attach: 'a=1&b=测试',
        total_amount: '100.00',
        trade_no: pay.json.data,
      })
      expect(fields.sign).to.match(/^[0-9a-f]{40}$/)
      expect(verifySign(fields, SECRET)).to.equal(true)
    }
    const stamps = shop.received.map((r) => Number(r.fields.timestamp))
    expect(new Set(stamps).size).to.equal(3)
    expect(stamps[1] - stamps[0]).to.be.at.least(59)
    expect(new Set(shop.received.map((r) => r.fields.sign)).size).to.equal(3)
    expect(payment.attempts.map((a) => a.fields.timestamp)).to.deep.equal(shop.received.map((r) => r.fields.timestamp))
  })

  it('deliverTo(url) sends each later pay\'s notification there, recording the pay\'s notify_url; null goes back', async () => {
    const shop = await receiver(() => 'success')
    const own = await receiver(() => 'success')
    await open()
    const accessToken = await token()
    expect(() => sandbox.deliverTo('shop.example/notify'), 'not a URL').to.throw(ConfigError, /http\(s\) URL/)

    sandbox.deliverTo(shop.url)
    const redirected = payParams(accessToken, { notify_url: 'https://shop.example.com/gat/notify' })
    expect((await call(PAY_PATH, redirected)).json.code).to.equal(0)
    const unnotified = payParams(accessToken)
    expect((await call(PAY_PATH, unnotified)).json.code).to.equal(0)
    const payment = await sandbox.waitForAcknowledged(redirected.outer_trade_no)
    expect(payment.notifyUrl).to.equal('https://shop.example.com/gat/notify')
    expect(sandbox.deliveries.find((d) => d.outerTradeNo === redirected.outer_trade_no)?.url).to.equal(shop.url)
    expect(shop.received.map((r) => r.fields.outer_trade_no)).to.deep.equal([redirected.outer_trade_no])
    expect(sandbox.getPayment(unnotified.outer_trade_no)?.state, 'a pay without notify_url is not notified').to.equal('unnotified')

    sandbox.deliverTo(null)
    const back = payParams(accessToken, { notify_url: own.url })
    expect((await call(PAY_PATH, back)).json.code).to.equal(0)
    await sandbox.waitForAcknowledged(back.outer_trade_no)
    expect(own.received.map((r) => r.fields.outer_trade_no)).to.deep.equal([back.outer_trade_no])
    expect(shop.received).to.have.length(1)
  })

  it('retries until the body is exactly success, recording every attempt', async () => {
    const answers = ['fail', { status: 500, body: 'error' }, 'success']
    const shop = await receiver((n) => answers[n - 1] ?? 'success')
    await open()
    const seen: string[] = []
    sandbox.on('attempt', ({ attempt }) => seen.push(`attempt ${attempt.attempt}`))
    sandbox.on('acknowledged', ({ payment }) => seen.push(`acknowledged ${payment!.outerTradeNo}`))
    const params = payParams(await token(), { notify_url: shop.url })
    expect((await call(PAY_PATH, params)).json.code).to.equal(0)

    const payment = await sandbox.waitForPayment(params.outer_trade_no, 'acknowledged')
    expect(payment.state).to.equal('acknowledged')
    expect(payment.attempts.map((a) => [a.attempt, a.status, a.body, a.error])).to.deep.equal([
      [1, 200, 'fail', null],
      [2, 500, 'error', null],
      [3, 200, 'success', null],
    ])
    for (const a of payment.attempts) {
      expect(a.at).to.be.a('number')
      expect(a.durationMs).to.be.a('number').and.at.least(0)
    }
    expect(seen).to.deep.equal(['attempt 1', 'attempt 2', 'attempt 3', `acknowledged ${params.outer_trade_no}`])
    expect(sandbox.stats.notifyAttempts).to.equal(3)
    await sandbox.waitIdle()
    expect(shop.received).to.have.length(3)
  })

  it('does not take "success" with whitespace, other case or extra content as an acknowledgement', async () => {
    const answers = ['success\n', ' success', 'SUCCESS', '<html>success</html>', 'success']
    const shop = await receiver((n) => answers[n - 1])
    await open()
    sandbox.sendNotification({ notifyUrl: shop.url, outerTradeNo: 'WS-1', totalAmount: '1.5' })
    const payment = await sandbox.waitForAcknowledged('WS-1')
    expect(payment.attempts.map((a) => a.body)).to.deep.equal(answers)
  })

  it('gives up after 10 attempts following the schedule and marks the payment abandoned', async () => {
    const shop = await receiver(() => 'fail')
    await open()
    let abandoned = 0
    sandbox.on('abandoned', () => abandoned++)
    const params = payParams(await token(), { notify_url: shop.url })
    expect((await call(PAY_PATH, params)).json.code).to.equal(0)
    const payment = await sandbox.waitForPayment(params.outer_trade_no, 'abandoned')
    expect(DEFAULT_RETRY_SCHEDULE).to.have.length(10)
    expect(payment.attempts).to.have.length(10)
    expect(payment.attempts.map((a) => a.attempt)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(shop.received).to.have.length(10)
    expect(abandoned).to.equal(1)
    await sandbox.waitIdle()
    expect(sandbox.stats.notifyAttempts).to.equal(10)
    // waitForAcknowledged fails fast with the reason once the payment is abandoned.
    let error: Error | undefined
    await sandbox.waitForAcknowledged(params.outer_trade_no).catch((e: Error) => (error = e))
    expect(error?.message).to.match(/abandoned, not acknowledged/)
  })

  it('records connection errors and answer timeouts as failed attempts', async () => {
    const shop = await receiver((n) => (n === 1 ? null : 'success'))
    await open({ notifyTimeoutMs: 200, retrySchedule: [0, 0] })
    sandbox.sendNotification({ notifyUrl: shop.url, outerTradeNo: 'TIMEOUT-1', totalAmount: '3' })
    const payment = await sandbox.waitForAcknowledged('TIMEOUT-1')
    expect(payment.attempts[0]).to.include({ status: null, body: null })
    expect(payment.attempts[0].error).to.match(/within 200 ms/)
    expect(payment.attempts[1]).to.include({ status: 200, body: 'success', error: null })

    await shop.close()
    sandbox.sendNotification({ notifyUrl: shop.url, outerTradeNo: 'REFUSED-1', totalAmount: '3' })
    const refused = await sandbox.waitForPayment('REFUSED-1', 'abandoned')
    expect(refused.attempts).to.have.length(2)
    for (const a of refused.attempts) expect(a.error).to.be.a('string').and.not.equal('')
  })

  it('a failed payment (failNextPays / setPayOutcome) answers PAY_FAILED and notifies an empty trade_no, still validly signed', async () => {
    const shop = await receiver(() => 'success')
    await open()
    const accessToken = await token()
    sandbox.failNextPays(1)
    const failed = payParams(accessToken, { notify_url: shop.url })
    const pay = await call(PAY_PATH, failed)
    // The answer agrees with the notification: no trade number for a payment that failed.
    expect(pay.json).to.include({ code: SANDBOX_CODES.PAY_FAILED, data: null })
    const paid = payParams(accessToken, { notify_url: shop.url })
    expect((await call(PAY_PATH, paid)).json.code).to.equal(0)
    await sandbox.waitIdle()

    const byNo = (no: string) => shop.received.find((r) => r.fields.outer_trade_no === no)!
    expect(byNo(failed.outer_trade_no).fields.trade_no).to.equal('')
    expect(byNo(failed.outer_trade_no).raw).to.match(/(^|&)trade_no=(&|$)/)
    expect(verifySign(byNo(failed.outer_trade_no).fields, SECRET)).to.equal(true)
    expect(byNo(paid.outer_trade_no).fields.trade_no).to.match(/^\d{16}$/)
    expect(sandbox.getPayment(failed.outer_trade_no)!.outcome).to.equal('failed')
    expect(sandbox.getPayment(paid.outer_trade_no)!.outcome).to.equal('paid')
    expect(byNo(failed.outer_trade_no).fields).to.not.have.property('attach')

    sandbox.setPayOutcome('failed')
    const later = payParams(accessToken, { notify_url: shop.url })
    expect((await call(PAY_PATH, later)).json.code).to.equal(SANDBOX_CODES.PAY_FAILED)
    await sandbox.waitForAcknowledged(later.outer_trade_no)
    expect(byNo(later.outer_trade_no).fields.trade_no).to.equal('')
  })

  it('sendNotification and notify deliver with the retry loop; notify keeps a given timestamp or sign', async () => {
    const shop = await receiver((n) => (n === 1 ? 'fail' : 'success'))
    await open({ signType: 'sha256' })
    const payment = sandbox.sendNotification({
      notifyUrl: shop.url, outerTradeNo: 'SN-1', totalAmount: '12.3', buyerOpenId: 'buyer-1', attach: 'x', failed: false,
    })
    expect(payment.totalAmount).to.equal('12.30')
    expect(() => sandbox.sendNotification({ notifyUrl: shop.url, outerTradeNo: 'SN-1', totalAmount: '1' })).to.throw(/exists/)
    await sandbox.waitForAcknowledged('SN-1')
    expect(shop.received[0].fields.sign).to.have.length(64)
    expect(verifySign(shop.received[1].fields, SECRET)).to.equal(true)
    expect(shop.received[1].fields).to.include({ buyer_open_id: 'buyer-1', total_amount: '12.30', attach: 'x', trade_no: payment.tradeNo })

    const stale = String(Math.floor(Date.now() / 1000) - 3600)
    const delivery = sandbox.notify(shop.url, { outer_trade_no: 'N-1', total_amount: '1.00', trade_no: '', timestamp: stale })
    const settled = await sandbox.waitForDelivery(delivery, 'acknowledged')
    const sent = shop.received[2].fields
    expect(sent).to.include({ appid: APP_ID, outer_trade_no: 'N-1', timestamp: stale, trade_no: '' })
    expect(verifySign(sent, SECRET)).to.equal(true)
    expect(settled.attempts).to.have.length(1)
    expect(sandbox.getPayment('N-1')).to.equal(undefined)

    const forged = sandbox.notify(shop.url, { outer_trade_no: 'N-2', total_amount: '1.00', trade_no: '1', sign: 'f'.repeat(40) })
    await sandbox.waitForDelivery(forged)
    expect(shop.received[3].fields.sign).to.equal('f'.repeat(40))
    expect(shop.received[3].fields.timestamp).to.match(/^\d{10}$/)
    expect(sandbox.deliveries).to.have.length(3)
  })

  it('close() cancels pending retries and settles waiters', async () => {
    const shop = await receiver(() => 'fail')
    await open({ timeScale: 1, retrySchedule: [0, 60_000] })
    sandbox.sendNotification({ notifyUrl: shop.url, outerTradeNo: 'CLOSE-1', totalAmount: '1' })
    await new Promise<void>((resolve) => sandbox.once('attempt', () => resolve()))
    const waiting = sandbox.waitForAcknowledged('CLOSE-1', 60_000).then(() => 'resolved', (e: Error) => e.message)
    await sandbox[Symbol.asyncDispose]()
    expect(await waiting).to.match(/cancelled, not acknowledged/)
    expect(sandbox.getPayment('CLOSE-1')!.state).to.equal('cancelled')
    expect(shop.received).to.have.length(1)
    await sandbox.waitIdle()
    expect(() => sandbox.notify(shop.url, {})).to.throw(/closed/)
  })
})

describe('sandbox: faults', () => {
  it('respond5xx answers an HTML 502 page on the given path, then recovers', async () => {
    await open()
    sandbox.respond5xx({ path: PAY_PATH })
    const accessToken = await token()
    const params = payParams(accessToken)
    const res = await fetch(`${sandbox.url}${PAY_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encodeForm({ ...params, sign: sign(params, SECRET) }),
    })
    expect(res.status).to.equal(502)
    expect(res.headers.get('content-type')).to.match(/^text\/html/)
    expect(await res.text()).to.match(/<html>[\s\S]*502 Bad Gateway/)
    expect(sandbox.payments).to.have.length(0)
    expect((await call(PAY_PATH, params)).json.code).to.equal(0)
    expect(sandbox.stats.payCalls).to.equal(2)

    sandbox.respond5xx({ status: 503, times: 2 })
    expect((await fetch(`${sandbox.url}${TOKEN_PATH}`, { method: 'POST' })).status).to.equal(503)
    expect((await fetch(`${sandbox.url}${TOKEN_PATH}`, { method: 'POST' })).status).to.equal(503)
    expect((await call(TOKEN_PATH, tokenParams())).json.code).to.equal(0)
  })

  it('hang never answers (optionally after processing), and close() still returns', async () => {
    await open()
    const accessToken = await token()
    const faults: Array<string | null> = []
    sandbox.on('request', (e) => faults.push(e.fault))

    sandbox.hang({ path: PAY_PATH })
    const dropped = payParams(accessToken)
    const first = await call(PAY_PATH, dropped, { signal: AbortSignal.timeout(300) }).then(() => 'answered', (e: Error) => e.name)
    expect(first).to.equal('TimeoutError')
    expect(sandbox.getPayment(dropped.outer_trade_no)).to.equal(undefined)

    // processed: the payment is made, but the client never hears of it (an ambiguous outcome).
    sandbox.hang({ path: PAY_PATH, processed: true })
    const ambiguous = payParams(accessToken)
    const second = await call(PAY_PATH, ambiguous, { signal: AbortSignal.timeout(300) }).then(() => 'answered', (e: Error) => e.name)
    expect(second).to.equal('TimeoutError')
    expect(sandbox.getPayment(ambiguous.outer_trade_no)!.tradeNo).to.match(/^\d{16}$/)
    const retry = await call(PAY_PATH, { ...ambiguous, timestamp: nowSec() })
    expect(retry.json.code).to.equal(OUTER_TRADE_NO_EXISTS_CODE)

    // A request left hanging without a client timeout: close() ends it.
    sandbox.hang()
    const arrived = new Promise<void>((resolve) => sandbox.once('request', () => resolve()))
    const pending = call(TOKEN_PATH, tokenParams()).then(() => 'answered', () => 'dropped')
    await arrived
    await sandbox.close()
    expect(await pending).to.equal('dropped')
    expect(faults).to.deep.equal(['hang', 'hang', null, 'hang'])
  })

  it('garble answers HTTP 200 with a body that is not JSON', async () => {
    await open()
    sandbox.garble({ path: TOKEN_PATH, times: 1 })
    const res = await fetch(`${sandbox.url}${TOKEN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encodeForm(signNotification(tokenParams(), SECRET)),
    })
    expect(res.status).to.equal(200)
    expect(res.headers.get('content-type')).to.match(/^application\/json/)
    const text = await res.text()
    expect(() => JSON.parse(text)).to.throw(SyntaxError)
    expect(sandbox.stats.tokensIssued).to.equal(0)
    expect((await call(TOKEN_PATH, tokenParams())).json.code).to.equal(0)

    sandbox.garble({ processed: true })
    const garbled = await fetch(`${sandbox.url}${TOKEN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encodeForm(signNotification(tokenParams(), SECRET)),
    })
    expect(garbled.headers.get('x-trace-id')).to.be.a('string')
    await garbled.text()
    expect(sandbox.stats.tokensIssued).to.equal(2)
    sandbox.clearFaults()
  })

  it('reset closes the connection after reading the request, without an answer (optionally after processing)', async () => {
    await open()
    const accessToken = await token()
    const events: Array<[string | null, number]> = []
    sandbox.on('request', (e) => events.push([e.fault, e.status]))
    sandbox.reset({ path: PAY_PATH })
    const dropped = payParams(accessToken)
    expect(await call(PAY_PATH, dropped).then(() => 'answered', () => 'reset')).to.equal('reset')
    expect(sandbox.getPayment(dropped.outer_trade_no)).to.equal(undefined)
    sandbox.reset({ path: PAY_PATH, processed: true })
    const made = payParams(accessToken)
    expect(await call(PAY_PATH, made).then(() => 'answered', () => 'reset')).to.equal('reset')
    expect(sandbox.getPayment(made.outer_trade_no)!.tradeNo).to.match(/^\d{16}$/)
    expect(events).to.deep.equal([['reset', 0], ['reset', 0]])
  })

  it('midAnswer sends the status, headers and half the body, then hangs or resets', async () => {
    await open()
    const accessToken = await token()
    for (const kind of ['hang', 'reset'] as const) {
      sandbox[kind]({ path: PAY_PATH, processed: true, midAnswer: true })
      const params = payParams(accessToken)
      const res = await fetch(`${sandbox.url}${PAY_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: encodeForm({ ...params, sign: sign(params, SECRET) }),
        signal: AbortSignal.timeout(300),
      })
      expect(res.status).to.equal(200)
      expect(res.headers.get('x-trace-id')).to.match(/^[0-9a-f]{16}$/)
      const full = Number(res.headers.get('content-length'))
      const body = await res.text().then(() => 'complete', (e: Error) => e.name)
      expect(body, kind).to.equal(kind === 'hang' ? 'TimeoutError' : 'TypeError')
      expect(full).to.be.above(20)
      expect(sandbox.getPayment(params.outer_trade_no)).to.not.equal(undefined)
    }
  })

  it('refuse answers a well-formed refusal with the code the test picks, and a trace id', async () => {
    await open()
    sandbox.refuse({ path: TOKEN_PATH, code: 999_912_345, msg: 'no' })
    const refused = await call(TOKEN_PATH, tokenParams())
    expect(refused.status).to.equal(200)
    expect(refused.json).to.deep.equal({ code: 999_912_345, msg: 'no', data: null })
    expect(refused.traceId).to.match(/^[0-9a-f]{16}$/)
    expect(sandbox.stats.tokensIssued).to.equal(0)
    expect((await call(TOKEN_PATH, tokenParams())).json.code).to.equal(0)
    expect(() => sandbox.refuse({ code: 0 })).to.throw(ParamError)
  })

  it('respondWith answers exactly what the test wrote, before or after processing the call', async () => {
    await open()
    const events: Array<[string | null, number, string | null]> = []
    sandbox.on('request', (e) => events.push([e.fault, e.status, e.traceId]))
    sandbox.respondWith({ path: TOKEN_PATH, status: 302, headers: { location: '/elsewhere', 'x-trace-id': 't-1' } })
    const redirect = await fetch(`${sandbox.url}${TOKEN_PATH}`, { method: 'POST', redirect: 'manual' })
    expect([redirect.status, redirect.headers.get('location'), await redirect.text()]).to.deep.equal([302, '/elsewhere', ''])

    sandbox.respondWith({ path: TOKEN_PATH, body: { code: 0, msg: 'OK', data: null }, processed: true })
    const answer = await call(TOKEN_PATH, tokenParams())
    expect(answer).to.deep.include({ status: 200, traceId: null, contentType: 'application/json;charset=UTF-8', json: { code: 0, msg: 'OK', data: null } })
    expect(sandbox.stats.tokensIssued, 'processed: the token was issued').to.equal(1)

    sandbox.respondWith({ body: '<html>login</html>', headers: { 'content-type': 'text/html' } })
    const page = await fetch(`${sandbox.url}/anything`, { method: 'POST' })
    expect([page.status, page.headers.get('content-type'), await page.text()]).to.deep.equal([200, 'text/html', '<html>login</html>'])
    expect(events).to.deep.equal([['custom', 302, 't-1'], ['custom', 200, null], ['custom', 200, null]])
    expect(() => sandbox.respondWith({ status: 100 })).to.throw(ParamError)
    expect(() => sandbox.respondWith({ headers: { 'x-n': 1 as never } })).to.throw(ParamError)
  })

  it('request events carry the parameters as received, faulted requests included; null for a body that is no form', async () => {
    await open()
    const seen: Array<Fields | null> = []
    sandbox.on('request', (e) => seen.push(e.params))
    sandbox.reset({ path: TOKEN_PATH })
    const params = tokenParams()
    await call(TOKEN_PATH, params, { query: { q: '1' } }).catch(() => undefined)
    await fetch(`${sandbox.url}${TOKEN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(seen).to.have.length(2)
    expect(seen[0]).to.deep.equal({ q: '1', ...params, sign: sign({ q: '1', ...params }, SECRET) })
    expect(seen[1]).to.equal(null)
  })
})

describe('signNotification / encodeForm', () => {
  const example = {
    appid: '20110698',
    outer_trade_no: '1000000005',
    total_amount: '100.00',
    buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
    trade_no: '2018070920000005',
    timestamp: '1531120153',
  }

  it('reproduces the worked example and keeps a given timestamp', () => {
    const signed = signNotification(example, 'secret123')
    expect(signed.sign).to.equal('5ad48cf46541f84b9e5741dfac48227d40b322aa')
    expect(signed.timestamp).to.equal('1531120153')
    expect(example).to.not.have.property('sign')
    expect(signNotification({ ...signed, sign: 'old' }, 'secret123').sign).to.equal(signed.sign)
  })

  it('adds the current timestamp in seconds when missing, and signs with the chosen algorithm', () => {
    const { timestamp, ...rest } = example
    const signed = signNotification(rest, 'secret123', 'sha512', () => 1_700_000_000_999)
    expect(signed.timestamp).to.equal('1700000000')
    expect(signed.sign).to.have.length(128)
    expect(verifySign(signed, 'secret123')).to.equal(true)
    expect(verifySign(signed, 'other')).to.equal(false)
    const rotated = signNotification(rest, ['first', 'second'], 'sha1', () => 1_700_000_000_000)
    expect(rotated.sign).to.equal(sign({ ...rest, timestamp: '1700000000' }, 'first'))
  })

  it('encodeForm is URLSearchParams encoding and round-trips Chinese text and separators', () => {
    const fields = { attach: 'a=1&b=测试 +%', appid: '1', missing: undefined }
    const body = encodeForm(fields)
    expect(body).to.equal(new URLSearchParams({ attach: 'a=1&b=测试 +%', appid: '1' }).toString())
    expect(Object.fromEntries(new URLSearchParams(body))).to.deep.equal({ attach: 'a=1&b=测试 +%', appid: '1' })
  })
})

describe('sandbox: failPaysWithAsset', () => {
  it('fails every pay with that asset and no other, even after clearFaults()', async () => {
    const { createSandbox: make } = await import('../../src/testing/sandbox')
    const { createClient } = await import('../../src/client')
    const sandbox = make({ appId: 'A1', appSecret: 's' })
    await sandbox.start()
    try {
      const client = createClient({ appId: 'A1', appSecret: 's', baseUrl: sandbox.url })
      sandbox.failPaysWithAsset('broke')
      const pay = (no: string, asset: string) => client.pay({ buyer_open_id: 'b', reason: 'r', total_amount: '1.00', outer_trade_no: no, asset_type: '4', asset_open_id: asset })
        .catch((err: { code?: unknown }) => { if (err.code !== SANDBOX_CODES.PAY_FAILED) throw err })
      await pay('F1', 'broke')
      await pay('F2', 'rich')
      await pay('F3', 'broke')
      sandbox.clearFaults()
      await pay('F4', 'broke')
      expect(['F1', 'F2', 'F3', 'F4'].map((n) => sandbox.getPayment(n)?.outcome)).to.deep.equal(['failed', 'paid', 'failed', 'failed'])
    } finally {
      await sandbox.close()
    }
  })
})
