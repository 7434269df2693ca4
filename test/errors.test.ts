/**
 * The error contract (README "Errors"): every error the package throws or rejects with is a
 * GuanaitongError whose message starts with `[express-guanaitong]`, with a code and a status;
 * every failure of a client call is a GatError. One sweep over each public function's documented
 * failures, and the values that are not Errors at all (a hook rejecting with undefined) on the
 * notify side.
 */
import { expect } from 'chai'
import express from 'express'
import { Redis } from 'ioredis'
import request from 'supertest'
import {
  ConfigError, createClient, fenToAmount, GatError, guanaitong, GuanaitongError, MemoryStore, ParamError, RedisStore,
  RedisTokenCache, sign, verifySign,
} from '../src/index'
import { createSandbox, signNotification, encodeForm } from '../src/testing/index'
import type { NotifyStore } from '../src/kernel/types'
import { APP_ID, SECRET, paidFields, recordingLogger } from './helpers'
import { deleteKeys, REDIS_URL, uniquePrefix, unusedPort } from './stores/redis-helpers'

const PAY = { buyer_open_id: 'b1', reason: '午餐', total_amount: '1.00', outer_trade_no: 'ERR0001', asset_type: '1', asset_open_id: 'a1' }
const quiet = { warn: () => {}, error: () => {} }

/** An ioredis client pointed at a port nothing listens on, failing at once instead of queueing. */
function unreachableRedis(port: number): Redis {
  const client = new Redis({ port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  return client
}

type Expected = typeof GuanaitongError | typeof ConfigError | typeof ParamError | typeof GatError

interface Row {
  /** The public function and the documented failure. */
  what: string
  call: () => unknown
  type: Expected
  code: string | number
}

describe('the error contract: every documented failure of every public function', function () {
  this.timeout(20_000)
  const cleanups: Array<() => Promise<void> | void> = []
  after(async () => {
    for (const cleanup of cleanups) await cleanup()
  })

  async function rows(): Promise<Row[]> {
    const deadPort = await unusedPort()
    const downRedis = unreachableRedis(await unusedPort())
    const redis = new Redis(REDIS_URL)
    const prefix = uniquePrefix('error-contract')
    await redis.set(`${prefix}lock`, 'another-instance', 'PX', 10_000)
    cleanups.push(async () => { await deleteKeys(redis, prefix); redis.disconnect(); downRedis.disconnect() })
    const sandbox = createSandbox({ appId: APP_ID, appSecret: SECRET })
    cleanups.push(() => sandbox.close())
    const started = createSandbox({ appId: APP_ID, appSecret: SECRET })
    await started.start()
    cleanups.push(() => started.close())

    const client = (extra: Record<string, unknown> = {}) =>
      createClient({ appId: APP_ID, appSecret: SECRET, baseUrl: `http://127.0.0.1:${deadPort}`, logger: quiet, timeoutMs: 2000, ...extra })
    const cacheDown = () => client({ tokenCache: new RedisTokenCache({ client: downRedis, prefix: 'down:' }) })
    const lockHeld = () => client({ baseUrl: started.url, tokenCache: new RedisTokenCache({ client: redis, prefix, waitMs: 100, pollMs: 20 }) })

    return [
      { what: 'guanaitong() without options', call: () => guanaitong(undefined as never), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'guanaitong() with debug: "yes"', call: () => guanaitong({ appId: APP_ID, appSecret: SECRET, onPaid: () => {}, logger: quiet, debug: 'yes' as never }), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'createClient() without appSecret', call: () => createClient({ appId: APP_ID } as never), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'sign() with an unknown algorithm', call: () => sign({ a: '1' }, SECRET, 'md5' as never), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'client.pay() with a bad parameter', call: () => client().pay({ ...PAY, total_amount: '0' }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'client.pay() with a number as amount', call: () => client().pay({ ...PAY, total_amount: 1e2 as never }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'client.pay() when Guanaitong is unreachable', call: () => client().pay(PAY), type: GatError, code: 'GAT_NETWORK' },
      { what: 'client.pay() when the token cache (Redis) is down', call: () => cacheDown().pay(PAY), type: GatError, code: 'GAT_TOKEN_CACHE' },
      { what: 'client.pay() when another instance holds the refresh lock (TOKEN_REFRESH_TIMEOUT)', call: () => lockHeld().pay(PAY), type: GatError, code: 'GAT_TOKEN_CACHE' },
      { what: 'client.getToken() when the token cache (Redis) is down', call: () => cacheDown().getToken(), type: GatError, code: 'GAT_TOKEN_CACHE' },
      { what: 'client.request("")', call: () => client().request(''), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'client.request() with a public parameter', call: () => client().request('/x', { appid: 'other' }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'client.request() when Guanaitong is unreachable', call: () => client().request('/x'), type: GatError, code: 'GAT_NETWORK' },
      { what: 'new MemoryStore() with a bad leaseMs', call: () => new MemoryStore({ leaseMs: -1 }), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'MemoryStore.claim("")', call: () => new MemoryStore().claim(''), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'new RedisStore() without a client', call: () => new RedisStore({} as never), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'RedisStore.claim("")', call: () => new RedisStore({ client: redis, prefix }).claim(''), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'RedisStore.claim() when Redis is down', call: () => new RedisStore({ client: downRedis }).claim('k'), type: GuanaitongError, code: 'REDIS_FAILED' },
      { what: 'new RedisTokenCache() without a client', call: () => new RedisTokenCache({} as never), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'RedisTokenCache.get() when Redis is down', call: () => new RedisTokenCache({ client: downRedis }).get(), type: GuanaitongError, code: 'REDIS_FAILED' },
      { what: 'RedisTokenCache.set() with a malformed token', call: () => new RedisTokenCache({ client: redis, prefix }).set({ token: '' } as never), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'RedisTokenCache.refresh() while another instance holds the lock', call: () => new RedisTokenCache({ client: redis, prefix, waitMs: 100, pollMs: 20 }).refresh(async () => ({ token: 't', expiresAt: Date.now() + 1e6, refreshAt: Date.now() + 1e6 })), type: GuanaitongError, code: 'TOKEN_REFRESH_TIMEOUT' },
      { what: 'fenToAmount() of a fraction of a fen', call: () => fenToAmount(12.5), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'createSandbox() with a bad port', call: () => createSandbox({ port: -1 }), type: ConfigError, code: 'INVALID_OPTION' },
      { what: 'sandbox.url before start()', call: () => sandbox.url, type: GuanaitongError, code: 'SANDBOX_STATE' },
      { what: 'sandbox.start() a second time', call: () => started.start(), type: GuanaitongError, code: 'SANDBOX_STATE' },
      { what: 'sandbox.sendNotification() without outerTradeNo', call: () => started.sendNotification({ notifyUrl: 'http://127.0.0.1:9/', totalAmount: '1.00' } as never), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'sandbox.sendNotification() with a number as amount', call: () => started.sendNotification({ notifyUrl: 'http://127.0.0.1:9/', outerTradeNo: 'N1', totalAmount: 3 as never }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'sandbox.failNextPays(-1)', call: () => started.failNextPays(-1), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'sandbox.respond5xx({ status: 200 })', call: () => started.respond5xx({ status: 200 }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'sandbox.hang({ times: 0 })', call: () => started.hang({ times: 0 }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'sandbox.refuse({ code: 0 })', call: () => started.refuse({ code: 0 }), type: ParamError, code: 'INVALID_PARAM' },
      { what: 'sandbox.waitForPayment() that times out', call: () => started.waitForPayment('NEVER', 'acknowledged', 20), type: GuanaitongError, code: 'SANDBOX_WAIT_FAILED' },
      { what: 'signNotification() without a secret', call: () => signNotification({ appid: APP_ID }, ''), type: ParamError, code: 'INVALID_PARAM' },
    ]
  }

  it('each throws or rejects with the documented GuanaitongError subclass, its code, a status and the package prefix', async () => {
    const failures: string[] = []
    for (const row of await rows()) {
      let thrown: unknown = undefined
      let threw = false
      try {
        await row.call()
      } catch (err) {
        threw = true
        thrown = err
      }
      const problem = !threw ? 'did not fail'
        : !(thrown instanceof GuanaitongError) ? `threw ${Object.prototype.toString.call(thrown)} ${String((thrown as Error)?.message)}`
        : !(thrown instanceof row.type) ? `threw ${thrown.name}, not ${row.type.name}`
        : thrown.code !== row.code ? `code ${String(thrown.code)}, not ${String(row.code)}`
        : !thrown.message.startsWith('[express-guanaitong] ') ? `message without the prefix: ${thrown.message}`
        : !Number.isInteger(thrown.status) ? `status ${String(thrown.status)}`
        : null
      if (problem) failures.push(`${row.what}: ${problem}`)
    }
    expect(failures).to.deep.equal([])
  })

  it('verifySign never throws, whatever it is given: false', () => {
    for (const params of [null, undefined, 'x', { sign: 5 }, { a: 1, sign: 'ab' }, Object.create(null)]) {
      expect(verifySign(params as never, SECRET)).to.equal(false)
    }
    expect(verifySign({ a: '1', sign: 'x'.repeat(40) }, [undefined, ''] as never)).to.equal(false)
  })
})

describe('the error contract: thrown values that are not Errors, on the notify side', () => {
  async function notify(setup: { onPaid?: () => unknown; store?: NotifyStore }) {
    const logger = recordingLogger()
    const app = express()
    app.use('/gat', guanaitong({
      appId: APP_ID, appSecret: SECRET, logger, payPath: false, onPaid: setup.onPaid ?? (() => {}), store: setup.store,
      client: { getToken: async () => 't', pay: async () => 't', request: async () => undefined as never },
    }))
    const res = await request(app).post('/gat/notify').type('form').send(encodeForm(paidFields()))
    return { res, logger }
  }

  for (const [what, thrown] of [['undefined', undefined], ['null', null], ['an object without a prototype', Object.create(null)], ['a symbol', Symbol('x')]] as const) {
    it(`onPaid rejecting with ${what} → fail (HANDLER_FAILED), logged, and the server keeps answering`, async () => {
      const { res, logger } = await notify({ onPaid: () => Promise.reject(thrown) })
      expect(res.status).to.equal(500)
      expect(res.text).to.equal('fail')
      expect(logger.reasons()).to.include('HANDLER_FAILED')
      expect((await notify({})).res.text).to.equal('success')
    })

    it(`a store whose claim rejects with ${what} → fail (STORE_FAILED)`, async () => {
      const store: NotifyStore = {
        claim: () => Promise.reject(thrown), complete: async () => true, release: async () => true, leaseMs: 1000, retentionMs: 1000,
      } as never
      const { res, logger } = await notify({ store })
      expect(res.text).to.equal('fail')
      expect(logger.reasons()).to.include('STORE_FAILED')
    })
  }
})
