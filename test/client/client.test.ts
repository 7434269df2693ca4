import { expect } from 'chai'
import { ConfigError, GatError, OUTER_TRADE_NO_EXISTS_CODE, ParamError, TOKEN_INVALID_CODE } from '../../src/kernel/errors'
import { createClient, MemoryTokenCache } from '../../src/client/index'
import { verifySign } from '../../src/kernel/signature'
import { createSandbox, PAY_PATH as PAY, TOKEN_PATH as TOKEN, type RespondWithOptions, type Sandbox } from '../../src/testing/sandbox'
import type { Logger, PayParams } from '../../src/kernel/types'
import type { ClientOptions } from '../../src/client/options'
import { caught, sandboxLog } from '../helpers'

const T0 = 1_700_000_000_000
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

describe('client/createClient', () => {
  let sandbox: Sandbox
  let log: ReturnType<typeof sandboxLog>
  let clock: number
  const make = (opts: Partial<ClientOptions> = {}) =>
    createClient({ appId: sandbox.appId, appSecret: sandbox.appSecret, baseUrl: sandbox.url, now: () => clock, logger: quiet, timeoutMs: 2000, ...opts })

  beforeEach(async () => {
    clock = T0
    // On the client's clock: the sandbox checks timestamps and expires tokens by it.
    sandbox = createSandbox({ now: () => clock })
    await sandbox.start()
    log = sandboxLog(sandbox)
  })
  afterEach(() => sandbox.close())

  describe('pay', () => {
    it('sends a signed pay with the token and public parameters, resolves with the trade number', async () => {
      const client = make()
      const tradeNo = await client.pay(payParams({ total_amount: '100.1', attach: '测试', trade_info: { thirdTradeNo: '100001' } }))
      expect(tradeNo).to.equal(sandbox.payments[0].tradeNo)
      const [req] = log.seen(PAY)
      expect(req.code, 'the sandbox took the pay').to.equal(0)
      expect(verifySign(req.params!, sandbox.appSecret)).to.equal(true)
      expect(req.params).to.include({
        appid: sandbox.appId, version: '1.0.0', timestamp: String(T0 / 1000), access_token: log.tokens[0],
        total_amount: '100.10', attach: '测试', trade_info: '{"thirdTradeNo":"100001"}', asset_type: '1',
      })
      expect(req.params!.sign).to.match(/^[0-9a-f]{40}$/)
    })

    it('signs with the configured algorithm and the first secret of a rotation list', async () => {
      const client = make({ signType: 'sha256', appSecret: [sandbox.appSecret, 'old-secret'] })
      await client.pay(payParams())
      expect(log.requests.map((r) => [r.path, r.code, verifySign(r.params!, sandbox.appSecret)])).to.deep.equal([[TOKEN, 0, true], [PAY, 0, true]])
      expect(log.seen(PAY)[0].params!.sign).to.have.length(64)
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
        const err = await caught(make().pay(payParams(bad as Partial<PayParams>)), ParamError)
        expect(err.field).to.equal(field)
        expect(sandbox.stats.requests, 'no request (not even a token) may reach the server').to.equal(0)
      })
    }

    it('100 concurrent pays on a cold client → exactly one token request, 100 pays', async () => {
      const client = make()
      const tradeNos = await Promise.all(Array.from({ length: 100 }, () => client.pay(payParams())))
      expect(log.seen(TOKEN)).to.have.length(1)
      expect(log.seen(PAY)).to.have.length(100)
      expect(new Set(tradeNos).size).to.equal(100)
      expect(log.requests.every((r) => r.code === 0 && verifySign(r.params!, sandbox.appSecret))).to.equal(true)
    })

    it('a failed token fetch does not poison the client: the next pay fetches again and succeeds', async () => {
      sandbox.respond5xx({ path: TOKEN, status: 500 })
      const client = make()
      const err = await caught(client.pay(payParams()))
      expect(err).to.be.instanceOf(GatError).with.property('kind', 'http')
      // The token call failed: the pay itself was never sent, so it is not ambiguous.
      expect(err).to.include({ path: TOKEN, sent: false, ambiguous: false })
      expect(err.message).to.contain(`(getting the access token for ${PAY})`).and.match(/; nothing was sent$/)
      expect(log.seen(PAY)).to.have.length(0)
      expect(await client.pay(payParams())).to.be.a('string')
      expect(log.seen(TOKEN)).to.have.length(2)
    })

    it('a token call that times out → the pay rejects timeout, not sent, not ambiguous', async () => {
      sandbox.hang({ path: TOKEN })
      const err = await caught(make({ timeoutMs: 200 }).pay(payParams()))
      expect(err).to.include({ kind: 'timeout', path: TOKEN, sent: false, ambiguous: false })
      expect(log.seen(PAY)).to.have.length(0)
    })

    it('a token cache that throws (anything, even undefined) → GatError token-cache, not sent, the original as cause', async () => {
      for (const thrown of [new Error('Connection is closed.'), undefined, 'down']) {
        const cache = new MemoryTokenCache()
        cache.get = async () => { throw thrown }
        const client = make({ tokenCache: cache })
        for (const call of [client.pay(payParams()), client.getToken()]) {
          const err = await caught(call)
          expect(err).to.include({ kind: 'token-cache', code: 'GAT_TOKEN_CACHE', sent: false, ambiguous: false, status: 0 })
          expect(err.message).to.match(/^\[express-guanaitong\] /)
          expect(err.cause).to.equal(thrown)
        }
      }
      expect(sandbox.stats.requests).to.equal(0)
    })

    it('1000210004, then the token cache fails on the retry → token-cache, not sent; the refused pay was the only one', async () => {
      const cache = new MemoryTokenCache()
      const client = make({ tokenCache: cache })
      await client.getToken()
      sandbox.expireTokens()
      cache.invalidate = async () => { throw new Error('Connection is closed.') }
      const err = await caught(client.pay(payParams()))
      expect(err).to.include({ kind: 'token-cache', sent: false, ambiguous: false })
      expect(log.seen(PAY)).to.have.length(1)
    })

    it('1000210004 → the token is dropped, one new token is created and the call retried once', async () => {
      const client = make()
      await client.pay(payParams())
      sandbox.expireTokens()
      const params = payParams()
      const tradeNo = await client.pay(params)
      expect(tradeNo).to.equal(sandbox.getPayment(params.outer_trade_no)?.tradeNo)
      expect(log.tokens).to.have.length(2)
      const pays = log.seen(PAY)
      expect(pays.map((r) => r.code)).to.deep.equal([0, TOKEN_INVALID_CODE, 0])
      expect(pays.slice(1).map((r) => r.params!.access_token)).to.deep.equal(log.tokens)
      expect(pays[1].params!.outer_trade_no).to.equal(params.outer_trade_no)
      expect(pays[2].params!.outer_trade_no).to.equal(params.outer_trade_no)
      expect(await client.getToken()).to.equal(log.tokens[1])
    })

    it('a second 1000210004 → GatError api, no loop (two pays, two tokens in all)', async () => {
      sandbox.refuse({ path: PAY, code: TOKEN_INVALID_CODE, msg: 'access_token无效', times: 2 })
      const err = await caught(make().pay(payParams()))
      expect(err).to.include({ kind: 'api', code: TOKEN_INVALID_CODE, traceId: log.seen(PAY)[1]?.traceId, msg: 'access_token无效' })
      expect(log.seen(PAY)).to.have.length(2)
      expect(log.seen(TOKEN)).to.have.length(2)
    })

    it('concurrent 1000210004 answers share one new token', async () => {
      const client = make()
      await client.getToken()
      sandbox.expireTokens()
      await Promise.all(Array.from({ length: 10 }, () => client.pay(payParams())))
      expect(log.seen(TOKEN)).to.have.length(2)
      expect(log.seen(PAY)).to.have.length(20)
    })

    it('another non-zero code → GatError api with code, msg and trace id, not retried', async () => {
      const client = make()
      const params = payParams()
      await client.pay(params)
      const err = await caught(client.pay(params))
      expect(err).to.include({ kind: 'api', code: OUTER_TRADE_NO_EXISTS_CODE, msg: '外部交易号已存在', status: 200, ambiguous: false })
      expect(err.traceId).to.match(/^[0-9a-f]{16}$/).and.equal(log.seen(PAY)[1].traceId)
      expect(log.seen(PAY)).to.have.length(2)
    })

    it('a pay that times out → kind timeout, ambiguous, sent exactly once (never re-sent)', async () => {
      const client = make({ timeoutMs: 300 })
      await client.getToken()
      sandbox.hang({ path: PAY })
      const err = await caught(client.pay(payParams()))
      expect(err).to.include({ kind: 'timeout', ambiguous: true, path: PAY })
      expect(log.seen(PAY)).to.have.length(1)
    })

    it('a pay whose connection drops after sending → network, ambiguous, sent once', async () => {
      const client = make()
      await client.getToken()
      sandbox.reset({ path: PAY })
      const err = await caught(client.pay(payParams()))
      expect(err).to.include({ kind: 'network', ambiguous: true })
      expect(log.seen(PAY)).to.have.length(1)
    })

    const answers: Array<[string, RespondWithOptions, string]> = [
      ['500 HTML page', { status: 500, body: '<html><h1>500 Internal Server Error</h1></html>', headers: { 'content-type': 'text/html', 'x-trace-id': 't-x' } }, 'http'],
      ['garbled JSON', { body: '{"code":0,"da', headers: { 'content-type': 'application/json', 'x-trace-id': 't-x' } }, 'invalid-response'],
      ['HTML with status 200', { body: '<html>login</html>', headers: { 'content-type': 'text/html', 'x-trace-id': 't-x' } }, 'invalid-response'],
      ['code 0 without a trade number', { body: { code: 0, msg: 'OK', data: null }, headers: { 'x-trace-id': 't-x' } }, 'invalid-response'],
    ]
    for (const [name, answer, kind] of answers) {
      it(`${name} → GatError ${kind} with the trace id, ambiguous, not retried`, async () => {
        const client = make()
        await client.getToken()
        sandbox.respondWith({ path: PAY, ...answer })
        const err = await caught(client.pay(payParams()))
        expect(err).to.include({ kind, traceId: 't-x', path: PAY, sent: true, ambiguous: true })
        expect(log.seen(PAY)).to.have.length(1)
      })
    }
  })

  describe('token lifetime through the client', () => {
    it('refreshes at 80 % of expires_in on the injected clock', async () => {
      expect(sandbox.tokenTtlSec).to.equal(3600)
      const client = make()
      expect(await client.getToken()).to.equal(log.tokens[0])
      clock = T0 + 2_879_999
      await client.pay(payParams())
      expect(log.seen(TOKEN)).to.have.length(1)
      clock = T0 + 2_880_000
      await client.pay(payParams())
      expect(log.seen(TOKEN)).to.have.length(2)
      expect(log.seen(PAY).map((r) => r.params!.access_token)).to.deep.equal(log.tokens)
    })

    it('a failed refresh keeps paying with the still-valid token and logs a warning', async () => {
      const warnings: string[] = []
      const client = make({ logger: { warn: (_fields, m) => warnings.push(m), error: () => {} } })
      await client.getToken()
      clock = T0 + 3_240_000 // 90 % of the token's hour
      sandbox.respond5xx({ path: TOKEN })
      expect(await client.pay(payParams())).to.be.a('string')
      expect(log.seen(TOKEN)).to.have.length(2)
      expect(log.seen(PAY)[0].params!.access_token).to.equal(log.tokens[0])
      expect(warnings).to.have.length(1)
      expect(warnings[0]).to.match(/refresh failed/)
    })

    it('shares a MemoryTokenCache between two clients (one token for both)', async () => {
      const tokenCache = new MemoryTokenCache()
      const a = make({ tokenCache })
      const b = make({ tokenCache })
      await Promise.all([a.pay(payParams()), b.pay(payParams()), a.getToken(), b.getToken()])
      expect(log.seen(TOKEN)).to.have.length(1)
    })
  })

  describe('request', () => {
    it('signs any call with the token, flattening params, and returns data', async () => {
      const params = payParams()
      const data = await make().request<string>('platformDealer/employee/pay', { ...params, trade_info: { a: 1 }, page: 2 })
      const payment = sandbox.getPayment(params.outer_trade_no)
      expect(data).to.equal(payment?.tradeNo)
      expect(payment?.params).to.include({ trade_info: '{"a":1}', page: '2', access_token: log.tokens[0] })
      expect(verifySign(payment!.params, sandbox.appSecret)).to.equal(true)
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
      const client = make({ baseUrl: `${sandbox.url}/` })
      await client.getToken()
      expect(log.requests.map((r) => r.path)).to.deep.equal([TOKEN])
    })
  })
})
