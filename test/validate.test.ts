/**
 * One set of option rules for every entry point (issue 9, item 2): each refuses nonsense at
 * construction with a ConfigError that names the option, what it must be and what it got.
 */
import { expect } from 'chai'
import request from 'supertest'
import express from 'express'
import { createClient } from '../src/client'
import { ConfigError } from '../src/kernel/errors'
import { dedupeNotification } from '../src/adapters/express/dedupe'
import { handleNotification } from '../src/adapters/express/handle'
import { parseNotification } from '../src/adapters/express/parse'
import { payRoute } from '../src/adapters/express/pay'
import { verifyNotification } from '../src/adapters/express/verify'
import { guanaitong } from '../src/adapters/express/router'
import { MemoryStore } from '../src/stores/memory'
import { RedisStore } from '../src/stores/redis'
import { RedisTokenCache } from '../src/stores/redis-token-cache'
import { createSandbox } from '../src/testing/sandbox'
import { APP_ID, formBody, paidFields, recordingLogger, SECRET, unusedClient } from './helpers'

const logger = recordingLogger()
/** A Redis client the stores accept at construction; never called here. */
const redis = { evalsha: () => Promise.resolve(0), eval: () => Promise.resolve(0) }
const MAX = 2 ** 31 - 1

function configError(build: () => unknown): ConfigError {
  let thrown: unknown
  try {
    build()
  } catch (err) {
    thrown = err
  }
  expect(thrown, 'a ConfigError at construction').to.be.instanceOf(ConfigError)
  expect((thrown as ConfigError).code).to.equal('INVALID_OPTION')
  return thrown as ConfigError
}

const router = (extra: Record<string, unknown>) => () =>
  guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, logger, onPaid: () => {}, ...extra } as never)
const client = (extra: Record<string, unknown>) => () => createClient({ appId: APP_ID, appSecret: SECRET, logger, ...extra } as never)

describe('option checks: the review\'s cases (issue 9)', () => {
  it('handleNotification({ onpaid }) (a typo) → ConfigError with a did-you-mean, not a handler that acknowledges every payment', () => {
    const err = configError(() => handleNotification({ onpaid: () => {} } as never))
    expect(err.message).to.match(/handleNotification\(\): unknown option "onpaid" \(did you mean "onPaid"\?\)/)
  })

  it('handleNotification({}) → ConfigError: onPaid is required', () => {
    expect(configError(() => handleNotification({} as never)).message).to.match(/onPaid is required/)
  })

  it('parseNotification({ bodyLimit: \'lots\' }) → ConfigError, not a route without a body limit', () => {
    expect(configError(() => parseNotification({ bodyLimit: 'lots' })).message).to.match(/bodyLimit must be .*got a string \("lots"\)/)
  })

  it('dedupeNotification({ store: {} }) → ConfigError, not a route that fails every notification', () => {
    expect(configError(() => dedupeNotification({ store: {} as never })).message).to.match(/store must implement NotifyStore/)
  })

  it('a store without a usable leaseMs (the lease renewal divides it) → ConfigError', () => {
    const store = { claim: async () => ({ status: 'busy' }), complete: async () => true, release: async () => true, retentionMs: 1 }
    expect(configError(() => dedupeNotification({ store: store as never })).message).to.match(/store\.leaseMs must be a positive number/)
  })

  describe(`durations above 2^31-1 ms (Node would fire them after 1 ms) → ConfigError; ${MAX} itself is fine`, () => {
    const cases: Array<[string, (ms: number) => unknown]> = [
      ['guanaitong({ handlerTimeoutMs })', (ms) => router({ handlerTimeoutMs: ms })()],
      ['guanaitong({ storeTimeoutMs })', (ms) => router({ storeTimeoutMs: ms })()],
      ['handleNotification({ handlerTimeoutMs })', (ms) => handleNotification({ onPaid: () => {}, handlerTimeoutMs: ms })],
      ['dedupeNotification({ storeTimeoutMs })', (ms) => dedupeNotification({ storeTimeoutMs: ms })],
      ['createClient({ timeoutMs })', (ms) => client({ timeoutMs: ms })()],
      ['new MemoryStore({ leaseMs })', (ms) => new MemoryStore({ leaseMs: ms })],
      ['new RedisStore({ retentionMs })', (ms) => new RedisStore({ client: redis, retentionMs: ms })],
      ['new RedisTokenCache({ lockMs })', (ms) => new RedisTokenCache({ client: redis, lockMs: ms })],
      ['createSandbox({ notifyTimeoutMs })', (ms) => createSandbox({ notifyTimeoutMs: ms })],
    ]
    for (const [where, build] of cases) {
      it(where, () => {
        expect(configError(() => build(MAX + 1)).message).to.contain(`at most ${MAX}`)
        expect(() => build(MAX)).to.not.throw()
      })
    }

    it('createSandbox({ timeScale }) that stretches a retry delay past the cap → ConfigError', () => {
      expect(configError(() => createSandbox({ timeScale: 1e6 })).message).to.match(/retrySchedule\[\d\] × timeScale/)
    })
  })

  describe('appId: 1 says what it got, the same at every entry point', () => {
    const cases: Array<[string, () => unknown]> = [
      ['guanaitong()', router({ appId: 1 })],
      ['createClient()', client({ appId: 1 })],
      ['verifyNotification()', () => verifyNotification({ appId: 1 as never, appSecret: SECRET })],
      ['createSandbox()', () => createSandbox({ appId: 1 as never })],
    ]
    for (const [where, build] of cases) {
      it(where, () => {
        expect(configError(build).message).to.contain(`${where}: appId must be a string`).and.contain('got a number (1)')
      })
    }
  })

  describe('appId rules are the same for the router and the client', () => {
    for (const [what, appId, message] of [
      ['missing', undefined, /appId is required/],
      ['blank', '  ', /appId is required/],
      ['with a trailing newline', `${APP_ID}\n`, /appId has leading or trailing whitespace/],
      ['with a colon', '2011:0698', /appId must not contain ":", "&" or "="/],
      ['with an &', '2011&x=1', /appId must not contain ":", "&" or "="/],
    ] as const) {
      it(`an appId ${what} is refused by both`, () => {
        expect(configError(router({ appId })).message).to.match(message)
        expect(configError(client({ appId })).message).to.match(message)
      })
    }
  })

  it('the router and the client default to the same logger, which keeps debug chatter off the console', async () => {
    const seen: string[] = []
    const original = { debug: console.debug, info: console.info, warn: console.warn }
    console.debug = (...args: unknown[]) => { seen.push(`debug ${String(args[0])}`) }
    console.info = (...args: unknown[]) => { seen.push(`info ${String(args[0])}`) }
    console.warn = (...args: unknown[]) => { seen.push(`warn ${String(args[0])}`) }
    try {
      const app = express()
      app.use('/gat', guanaitong({ appId: APP_ID, appSecret: SECRET, client: unusedClient, payPath: false, onPaid: () => {} }))
      const fields = paidFields()
      for (let i = 0; i < 2; i++) {
        const res = await request(app).post('/gat/notify').type('form').send(formBody(fields))
        expect(res.text).to.equal('success')
      }
      // The second delivery is a duplicate, logged at debug: not printed by the default logger.
      expect(seen.filter((line) => line.startsWith('debug') || line.startsWith('info'))).to.deep.equal([])
    } finally {
      Object.assign(console, original)
    }
  })

  it('verifyNotification({ appId, appSecret: \'\' }) → ConfigError, the same secret rule as the router', () => {
    expect(configError(() => verifyNotification({ appId: APP_ID, appSecret: '' })).message).to.match(/appSecret is missing or blank/)
  })

  it('payRoute({}) and payRoute({ client: {} }) → ConfigError', () => {
    expect(configError(() => payRoute({} as never)).message).to.match(/client is required/)
    expect(configError(() => payRoute({ client: {} as never })).message).to.match(/client must come from createClient\(\)/)
  })

  it('payRoute({ extraPayParams: [\'a=b\'] }) → ConfigError: a name the signed string cannot carry', () => {
    expect(configError(() => payRoute({ client: unusedClient, extraPayParams: ['a=b'] })).message).to.match(/extraPayParams must list plain parameter names/)
  })

  it('guanaitong({ notifyUrl }) with a query string (& or =) → ConfigError', () => {
    expect(configError(router({ notifyUrl: 'https://shop.example/gat/notify?tenant=1' })).message).to.match(/notifyUrl must not contain "&" or "="/)
  })

  it('an option of another middleware (one options object passed to each) → ConfigError saying where it belongs', () => {
    const err = configError(() => parseNotification({ appId: APP_ID } as never))
    expect(err.message).to.match(/unknown option "appId" \(it is an option of guanaitong\(\), createClient\(\), verifyNotification\(\), payRoute\(\); parseNotification\(\) takes bodyLimit, parameterLimit, bodyTimeoutMs, logger\)/)
  })
})

describe('option checks: unknown names get a did-you-mean (edit distance)', () => {
  const cases: Array<[string, () => unknown, string, string]> = [
    ['guanaitong()', router({ appSecert: SECRET }), 'appSecert', 'appSecret'],
    ['guanaitong()', router({ onPayed: () => {} }), 'onPayed', 'onPaid'],
    ['guanaitong()', router({ tolerance: 60 }), 'tolerance', 'toleranceSec'],
    ['guanaitong()', router({ notifyURL: 'https://shop.example/n' }), 'notifyURL', 'notifyUrl'],
    ['guanaitong()', router({ handlerTimeout: 1000 }), 'handlerTimeout', 'handlerTimeoutMs'],
    ['createClient()', client({ appSecert: SECRET }), 'appSecert', 'appSecret'],
    ['createClient()', client({ timeout: 5000 }), 'timeout', 'timeoutMs'],
    ['verifyNotification()', () => verifyNotification({ appId: APP_ID, appSecret: SECRET, tolerence: 5 } as never), 'tolerence', 'toleranceSec'],
    ['MemoryStore', () => new MemoryStore({ leaseMS: 1000 } as never), 'leaseMS', 'leaseMs'],
    ['RedisStore', () => new RedisStore({ client: redis, prefx: 'a:' } as never), 'prefx', 'prefix'],
    ['RedisTokenCache', () => new RedisTokenCache({ client: redis, lockms: 1000 } as never), 'lockms', 'lockMs'],
    ['createSandbox()', () => createSandbox({ appsecret: 'x' } as never), 'appsecret', 'appSecret'],
    ['payRoute()', () => payRoute({ client: unusedClient, extraPayParam: ['memo'] } as never), 'extraPayParam', 'extraPayParams'],
  ]
  for (const [where, build, given, meant] of cases) {
    it(`${where}: ${given} → did you mean ${meant}?`, () => {
      expect(configError(build).message).to.contain(`${where}: unknown option "${given}" (did you mean "${meant}"?)`)
    })
  }

  it('a name nothing like any option gets no suggestion', () => {
    expect(configError(router({ zzzz: 1 })).message).to.match(/unknown option "zzzz"$/)
  })
})
