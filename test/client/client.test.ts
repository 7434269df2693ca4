import { expect } from 'chai'
import { ConfigError, GatError, OUTER_TRADE_NO_EXISTS_CODE, ParamError, TOKEN_INVALID_CODE } from '../../src/errors'
import { createClient, MemoryTokenCache } from '../../src/client/index'
import type { ClientOptions, Logger, PayParams } from '../../src/types'
import { FakeGat } from './fake-gat'

const T0 = 1_700_000_000_000
const PAY = '/platformDealer/employee/pay'
const TOKEN = '/token/create'
const quiet: Logger = { warn: () => {}, error: () => {} }

let seq = 0
function payParams(extra: Partial<PayParams> = {}): PayParams {
  return {
    buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908',
    reason: '午餐支付',
    total_amount: '100.01',
    outer_trade_no: `T${Date.now() % 1e9}${++seq}`,
    asset_type: '1',
    asset_open_id: 'a5fad9894edd0d2202639248fa0461ec',
    ...extra,
  }
}

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection, got success')
}

describe('client/createClient', () => {
  let fake: FakeGat
  let clock: number
  const make = (opts: Partial<ClientOptions> = {}) =>
    createClient({ appId: fake.appId, appSecret: fake.secret, baseUrl: fake.url, now: () => clock, logger: quiet, timeoutMs: 2000, ...opts })

  beforeEach(async () => {
    fake = await FakeGat.start()
    clock = T0
  })
  afterEach(() => fake.close())

  describe('pay', () => {
    it('sends a signed pay with the token and public parameters, resolves with the trade number', async () => {
      const client = make()
      const tradeNo = await client.pay(payParams({ total_amount: '100.1', attach: '测试', trade_info: { thirdTradeNo: '100001' } }))
      expect(tradeNo).to.equal('2020070200000001')
      const [req] = fake.seen(PAY)
      expect(req.signOk).to.equal(true)
      expect(req.fields).to.include({
        appid: fake.appId, version: '1.0.0', timestamp: String(T0 / 1000), access_token: 'tok-1',
        total_amount: '100.10', attach: '测试', trade_info: '{"thirdTradeNo":"100001"}', asset_type: '1',
      })
      expect(req.fields.sign).to.match(/^[0-9a-f]{40}$/)
    })

    it('signs with the configured algorithm and the first secret of a rotation list', async () => {
      const client = make({ signType: 'sha256', appSecret: [fake.secret, 'old-secret'] })
      await client.pay(payParams())
      expect(fake.requests.map((r) => r.signOk)).to.deep.equal([true, true])
      expect(fake.seen(PAY)[0].fields.sign).to.have.length(64)
    })

    const rejected: Array<[string, Partial<PayParams> | Record<string, unknown>]> = [
      ['total_amount', { total_amount: 0 }],
      ['total_amount', { total_amount: '0.001' }],
      ['total_amount', { total_amount: '1e2' }],
      ['total_amount', { total_amount: NaN }],
      ['total_amount', { total_amount: -1 }],
      ['total_amount', { total_amount: '100000000.00' }],
      ['total_amount', { total_amount: 1e2 }],
      ['total_amount', { total_amount: 100 }],
      ['buyer_open_id', { buyer_open_id: 'x'.repeat(33) }],
      ['reason', { reason: '' }],
      ['outer_trade_no', { outer_trade_no: '1' }],
      ['asset_type', { asset_type: '2' }],
      ['asset_open_id', { asset_open_id: undefined }],
      ['notify_url', { notify_url: 'u'.repeat(255) }],
      ['attach', { attach: 'a'.repeat(101) }],
    ]
    for (const [field, bad] of rejected) {
      it(`rejects ${field}=${JSON.stringify(Object.values(bad)[0])?.slice(0, 20)} with ParamError before anything is sent`, async () => {
        const err = await caught(make().pay(payParams(bad as Partial<PayParams>)))
        expect(err).to.be.instanceOf(ParamError)
        expect((err as ParamError).field).to.equal(field)
        expect(fake.requests, 'no request (not even a token) may reach the server').to.have.length(0)
      })
    }

    it('100 concurrent pays on a cold client → exactly one token request, 100 pays', async () => {
      const client = make()
      const tradeNos = await Promise.all(Array.from({ length: 100 }, () => client.pay(payParams())))
      expect(fake.seen(TOKEN)).to.have.length(1)
      expect(fake.seen(PAY)).to.have.length(100)
      expect(new Set(tradeNos).size).to.equal(100)
      expect(fake.requests.every((r) => r.signOk)).to.equal(true)
    })

    it('a failed token fetch does not poison the client: the next pay fetches again and succeeds', async () => {
      fake.script(TOKEN, { status: 500, body: '<html>busy</html>' })
      const client = make()
      const err = await caught(client.pay(payParams()))
      expect(err).to.be.instanceOf(GatError).with.property('kind', 'http')
      // The token call failed: the pay itself was never sent, so it is not ambiguous.
      expect(err).to.include({ path: TOKEN, sent: false, ambiguous: false })
      expect(err.message).to.contain(`(getting the access token for ${PAY})`).and.match(/; nothing was sent$/)
      expect(fake.seen(PAY)).to.have.length(0)
      expect(await client.pay(payParams())).to.be.a('string')
      expect(fake.seen(TOKEN)).to.have.length(2)
    })

    it('a token call that times out → the pay rejects timeout, not sent, not ambiguous', async () => {
      fake.script(TOKEN, { hang: true })
      const err = await caught(make({ timeoutMs: 200 }).pay(payParams()))
      expect(err).to.include({ kind: 'timeout', path: TOKEN, sent: false, ambiguous: false })
      expect(fake.seen(PAY)).to.have.length(0)
    })

    it('a token cache that throws (anything, even undefined) → GatError token-cache, not sent, the original as cause', async () => {
      for (const thrown of [new Error('Connection is closed.'), undefined, 'down']) {
        const cache = new MemoryTokenCache()
        cache.get = async () => { throw thrown }
        const client = make({ tokenCache: cache })
        for (const call of [client.pay(payParams()), client.getToken()]) {
          const err = await caught(call)
          expect(err).to.be.instanceOf(GatError)
          expect(err).to.include({ kind: 'token-cache', code: 'GAT_TOKEN_CACHE', sent: false, ambiguous: false, status: 0 })
          expect(err.message).to.match(/^\[express-guanaitong\] /)
          expect(err.cause).to.equal(thrown)
        }
      }
      expect(fake.requests).to.have.length(0)
    })

    it('1000210004, then the token cache fails on the retry → token-cache, not sent; the refused pay was the only one', async () => {
      const cache = new MemoryTokenCache()
      const client = make({ tokenCache: cache })
      await client.getToken()
      fake.revokeTokens()
      cache.invalidate = async () => { throw new Error('Connection is closed.') }
      const err = await caught(client.pay(payParams()))
      expect(err).to.include({ kind: 'token-cache', sent: false, ambiguous: false })
      expect(fake.seen(PAY)).to.have.length(1)
    })

    it('1000210004 → the token is dropped, one new token is created and the call retried once', async () => {
      const client = make()
      await client.pay(payParams())
      fake.revokeTokens()
      const params = payParams()
      const tradeNo = await client.pay(params)
      expect(tradeNo).to.be.a('string')
      expect(fake.seen(TOKEN)).to.have.length(2)
      const pays = fake.seen(PAY)
      expect(pays).to.have.length(3)
      expect(pays.slice(1).map((r) => r.fields.access_token)).to.deep.equal(['tok-1', 'tok-2'])
      expect(pays[1].fields.outer_trade_no).to.equal(params.outer_trade_no)
      expect(pays[2].fields.outer_trade_no).to.equal(params.outer_trade_no)
      expect(await client.getToken()).to.equal('tok-2')
    })

    it('a second 1000210004 → GatError api, no loop (two pays, two tokens in all)', async () => {
      fake.script(PAY,
        { json: { code: TOKEN_INVALID_CODE, msg: 'access_token无效', data: null } },
        { json: { code: TOKEN_INVALID_CODE, msg: 'access_token无效', data: null }, headers: { 'x-trace-id': 't-2nd' } })
      const err = await caught(make().pay(payParams()))
      expect(err).to.be.instanceOf(GatError)
      expect(err).to.include({ kind: 'api', code: TOKEN_INVALID_CODE, traceId: 't-2nd', msg: 'access_token无效' })
      expect(fake.seen(PAY)).to.have.length(2)
      expect(fake.seen(TOKEN)).to.have.length(2)
    })

    it('concurrent 1000210004 answers share one new token', async () => {
      const client = make()
      await client.getToken()
      fake.revokeTokens()
      await Promise.all(Array.from({ length: 10 }, () => client.pay(payParams())))
      expect(fake.seen(TOKEN)).to.have.length(2)
      expect(fake.seen(PAY)).to.have.length(20)
    })

    it('another non-zero code → GatError api with code, msg and trace id, not retried', async () => {
      const client = make()
      const params = payParams()
      await client.pay(params)
      const err = await caught(client.pay(params))
      expect(err).to.be.instanceOf(GatError)
      expect(err).to.include({ kind: 'api', code: OUTER_TRADE_NO_EXISTS_CODE, msg: '外部交易号已存在', status: 200, ambiguous: false })
      expect((err as GatError).traceId).to.match(/^trace-\d+$/)
      expect(fake.seen(PAY)).to.have.length(2)
    })

    it('a pay that times out → kind timeout, ambiguous, sent exactly once (never re-sent)', async () => {
      const client = make({ timeoutMs: 300 })
      await client.getToken()
      fake.script(PAY, { hang: true })
      const err = await caught(client.pay(payParams()))
      expect(err).to.be.instanceOf(GatError)
      expect(err).to.include({ kind: 'timeout', ambiguous: true, path: PAY })
      expect(fake.seen(PAY)).to.have.length(1)
    })

    it('a pay whose connection drops after sending → network, ambiguous, sent once', async () => {
      const client = make()
      await client.getToken()
      fake.script(PAY, { close: true })
      const err = await caught(client.pay(payParams()))
      expect(err).to.include({ kind: 'network', ambiguous: true })
      expect(fake.seen(PAY)).to.have.length(1)
    })

    for (const [name, answer, kind] of [
      ['500 HTML page', { status: 500, body: '<html><h1>500 Internal Server Error</h1></html>', headers: { 'x-trace-id': 't-x' } }, 'http'],
      ['garbled JSON', { body: '{"code":0,"da', contentType: 'application/json', headers: { 'x-trace-id': 't-x' } }, 'invalid-response'],
      ['HTML with status 200', { body: '<html>login</html>', headers: { 'x-trace-id': 't-x' } }, 'invalid-response'],
      ['code 0 without a trade number', { json: { code: 0, msg: 'OK', data: null }, headers: { 'x-trace-id': 't-x' } }, 'invalid-response'],
    ] as const) {
      it(`${name} → GatError ${kind} with the trace id, ambiguous, not retried`, async () => {
        const client = make()
        await client.getToken()
        fake.script(PAY, answer)
        const err = await caught(client.pay(payParams()))
        expect(err).to.be.instanceOf(GatError)
        expect(err).to.include({ kind, traceId: 't-x', path: PAY, sent: true, ambiguous: true })
        expect(fake.seen(PAY)).to.have.length(1)
      })
    }
  })

  describe('token lifetime through the client', () => {
    it('refreshes at 80 % of expires_in on the injected clock', async () => {
      fake.expiresIn = 1000
      const client = make()
      expect(await client.getToken()).to.equal('tok-1')
      clock = T0 + 799_999
      await client.pay(payParams())
      expect(fake.seen(TOKEN)).to.have.length(1)
      clock = T0 + 800_000
      await client.pay(payParams())
      expect(fake.seen(TOKEN)).to.have.length(2)
      expect(fake.seen(PAY).map((r) => r.fields.access_token)).to.deep.equal(['tok-1', 'tok-2'])
    })

    it('a failed refresh keeps paying with the still-valid token and logs a warning', async () => {
      const warnings: string[] = []
      fake.expiresIn = 1000
      const client = make({ logger: { warn: (_fields, m) => warnings.push(m), error: () => {} } })
      await client.getToken()
      clock = T0 + 900_000
      fake.script(TOKEN, { status: 502, body: 'bad gateway' })
      expect(await client.pay(payParams())).to.be.a('string')
      expect(fake.seen(TOKEN)).to.have.length(2)
      expect(fake.seen(PAY)[0].fields.access_token).to.equal('tok-1')
      expect(warnings).to.have.length(1)
      expect(warnings[0]).to.match(/refresh failed/)
    })

    it('shares a MemoryTokenCache between two clients (one token for both)', async () => {
      const tokenCache = new MemoryTokenCache()
      const a = make({ tokenCache })
      const b = make({ tokenCache })
      await Promise.all([a.pay(payParams()), b.pay(payParams()), a.getToken(), b.getToken()])
      expect(fake.seen(TOKEN)).to.have.length(1)
    })
  })

  describe('request', () => {
    it('signs any call with the token, flattening params, and returns data', async () => {
      const data = await make().request<{ echo: Record<string, string> }>('employee/asset/list', { open_id: 'o1', page: 2, info: { a: 1 } })
      expect(data.echo).to.include({ open_id: 'o1', page: '2', info: '{"a":1}', access_token: 'tok-1' })
      expect(fake.seen('/employee/asset/list')[0].signOk).to.equal(true)
    })
  })

  describe('options', () => {
    const base = { appId: '20110698', appSecret: 'secret123' }
    const bad: Array<[string, Record<string, unknown>, RegExp]> = [
      ['missing appId', { appSecret: 'x' }, /appId is required/],
      ['blank appId', { appId: '  ', appSecret: 'x' }, /appId is required/],
      ['missing appSecret', { appId: '1' }, /appSecret is missing or blank/],
      ['blank appSecret', { appId: '1', appSecret: '   ' }, /appSecret is missing or blank/],
      ['appSecret with a newline', { ...base, appSecret: 'secret123\n' }, /probably copied with a newline/],
      ['secret list with a padded entry', { ...base, appSecret: ['ok', ' x'] }, /appSecret\[1\].*newline/],
      ['empty secret list', { ...base, appSecret: [] }, /empty list/],
      ['unknown signType', { ...base, signType: 'md5' }, /signType must be one of sha1, sha256, sha512; got a string \("md5"\)/],
      ['ftp baseUrl', { ...base, baseUrl: 'ftp://openapi.guanaitong.com' }, /not an http\(s\) URL/],
      ['relative baseUrl', { ...base, baseUrl: 'openapi.guanaitong.com' }, /not an http\(s\) URL/],
      ['zero timeoutMs', { ...base, timeoutMs: 0 }, /timeoutMs must be a positive number/],
      ['negative timeoutMs', { ...base, timeoutMs: -5 }, /timeoutMs must be a positive/],
      ['NaN timeoutMs', { ...base, timeoutMs: NaN }, /timeoutMs must be a positive/],
      ['bad tokenCache', { ...base, tokenCache: {} }, /tokenCache must implement/],
    ]
    for (const [name, opts, message] of bad) {
      it(`${name} → ConfigError saying what to do`, () => {
        expect(() => createClient(opts as unknown as ClientOptions)).to.throw(ConfigError, message)
      })
    }

    it('strips a trailing slash from baseUrl', async () => {
      const client = make({ baseUrl: `${fake.url}/` })
      await client.getToken()
      expect(fake.requests.map((r) => r.path)).to.deep.equal([TOKEN])
    })
  })
})
