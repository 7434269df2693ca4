import { expect } from 'chai'
import { createToken, MemoryTokenCache, REFRESH_RETRY_MS, TokenManager } from '../../src/client/token'
import type { Log } from '../../src/observe/log'
import type { CachedToken, TokenCache } from '../../src/kernel/types'
import { verifySign } from '../../src/kernel/signature'
import { createSandbox, TOKEN_PATH, type Sandbox } from '../../src/testing/sandbox'
import { caught, sandboxLog } from '../helpers'

const T0 = 1_700_000_000_000

function recordingLogger(): Log & { warnings: string[] } {
  const warnings: string[] = []
  const none = () => {}
  return { warnings, debug: none, info: none, warn: (_fields, m) => warnings.push(m), error: none }
}

/** A cache without `refresh`, so the manager must de-duplicate on its own. */
class PlainCache implements TokenCache {
  value: CachedToken | null = null
  async get() { return this.value }
  async set(t: CachedToken) { this.value = t }
  async invalidate(token: string) { if (this.value?.token === token) this.value = null }
}

describe('client/token: MemoryTokenCache', () => {
  it('invalidate drops the token only while it is still the current one', async () => {
    const cache = new MemoryTokenCache()
    await cache.set({ token: 'A', expiresAt: 2, refreshAt: 1 })
    await cache.set({ token: 'B', expiresAt: 2, refreshAt: 1 })
    await cache.invalidate('A')
    expect((await cache.get())?.token).to.equal('B')
    await cache.invalidate('B')
    expect(await cache.get()).to.equal(null)
  })

  it('refresh shares one in-flight promise and forgets it once settled (a failure does not stick)', async () => {
    const cache = new MemoryTokenCache()
    let calls = 0
    let release!: () => void
    const gate = new Promise<void>((r) => { release = r })
    const fetch = async () => {
      calls++
      await gate
      throw new Error('down')
    }
    const all = Promise.allSettled([cache.refresh(fetch), cache.refresh(fetch), cache.refresh(fetch)])
    release()
    const results = await all
    expect(calls).to.equal(1)
    expect(results.every((r) => r.status === 'rejected')).to.equal(true)
    const ok = await cache.refresh(async () => { calls++; return { token: 'C', expiresAt: 2, refreshAt: 1 } })
    expect(ok.token).to.equal('C')
    expect(calls).to.equal(2)
  })
})

describe('client/token: TokenManager', () => {
  let clock: number
  let created: number
  let fail: boolean
  const create = async (): Promise<CachedToken> => {
    created++
    await Promise.resolve()
    if (fail) throw new Error('token endpoint down')
    return { token: `t${created}`, expiresAt: clock + 3_600_000, refreshAt: clock + 2_880_000 }
  }
  beforeEach(() => {
    clock = T0
    created = 0
    fail = false
  })

  for (const [name, makeCache] of [['MemoryTokenCache (refresh)', () => new MemoryTokenCache()], ['a cache without refresh', () => new PlainCache()]] as const) {
    it(`100 concurrent cold callers share one creation with ${name}`, async () => {
      const m = new TokenManager({ cache: makeCache(), create, now: () => clock, logger: recordingLogger() })
      const tokens = await Promise.all(Array.from({ length: 100 }, () => m.get()))
      expect(created).to.equal(1)
      expect(new Set(tokens)).to.deep.equal(new Set(['t1']))
    })
  }

  it('reuses the token before refreshAt, refreshes after it (80 %)', async () => {
    const m = new TokenManager({ cache: new MemoryTokenCache(), create, now: () => clock, logger: recordingLogger() })
    expect(await m.get()).to.equal('t1')
    clock = T0 + 2_879_999
    expect(await m.get()).to.equal('t1')
    expect(created).to.equal(1)
    clock = T0 + 2_880_000
    expect(await m.get()).to.equal('t2')
    expect(created).to.equal(2)
  })

  it('a failed refresh keeps the still-valid token (warns once), retries after a pause, and fails once expired', async () => {
    const logger = recordingLogger()
    const m = new TokenManager({ cache: new MemoryTokenCache(), create, now: () => clock, logger })
    await m.get()
    fail = true
    clock = T0 + 3_000_000
    const during = await Promise.all([m.get(), m.get(), m.get()])
    expect(during).to.deep.equal(['t1', 't1', 't1'])
    expect(created).to.equal(2) // one shared attempt
    expect(logger.warnings).to.have.length(1)
    expect(await m.get()).to.equal('t1')
    expect(created).to.equal(2) // pausing: the hourly token quota is not burnt on every call
    clock += REFRESH_RETRY_MS
    expect(await m.get()).to.equal('t1')
    expect(created).to.equal(3)
    clock = T0 + 3_600_000 // expired: no fallback any more
    let err: unknown
    try { await m.get() } catch (e) { err = e }
    expect(err).to.be.instanceOf(Error).with.property('message', 'token endpoint down')
  })

  it('a failed cold fetch does not poison the next call', async () => {
    const m = new TokenManager({ cache: new PlainCache(), create, now: () => clock, logger: recordingLogger() })
    fail = true
    const failed = await Promise.allSettled([m.get(), m.get()])
    expect(failed.map((r) => r.status)).to.deep.equal(['rejected', 'rejected'])
    expect(created).to.equal(1)
    fail = false
    expect(await m.get()).to.equal('t2')
  })

  it('after another waiter stored a fresh token, a queued refresh reuses it instead of creating one', async () => {
    // A shared cache whose refresh runs fetch for every caller in turn, like a cross-process lock would.
    const inner = new PlainCache()
    let chain: Promise<unknown> = Promise.resolve()
    const locking: TokenCache = {
      get: () => inner.get(),
      set: (t) => inner.set(t),
      invalidate: (t) => inner.invalidate(t),
      refresh: (fetch) => {
        const run = chain.then(fetch)
        chain = run.catch(() => {})
        return run
      },
    }
    const m = new TokenManager({ cache: locking, create, now: () => clock, logger: recordingLogger() })
    const tokens = await Promise.all([m.get(), m.get(), m.get()])
    expect(created).to.equal(1)
    expect(tokens).to.deep.equal(['t1', 't1', 't1'])
  })

  it('invalidate(old) after a newer token was stored keeps the newer one', async () => {
    const cache = new MemoryTokenCache()
    const m = new TokenManager({ cache, create, now: () => clock, logger: recordingLogger() })
    await m.get()
    await m.invalidate('t1')
    expect(await m.get()).to.equal('t2')
    await m.invalidate('t1')
    expect(await m.get()).to.equal('t2')
    expect(created).to.equal(2)
  })
})

describe('client/token: createToken against the sandbox', () => {
  let sandbox: Sandbox
  let log: ReturnType<typeof sandboxLog>
  beforeEach(async () => {
    sandbox = createSandbox({ now: () => T0 })
    await sandbox.start()
    log = sandboxLog(sandbox)
  })
  afterEach(() => sandbox.close())
  const cfg = (now: () => number) => ({
    appId: sandbox.appId, signingSecret: sandbox.appSecret, signType: 'sha1' as const, baseUrl: sandbox.url, timeoutMs: 2000, now,
  })

  it('sends a signed client_credential request and computes refreshAt at 80 % of expires_in', async () => {
    const t = await createToken(cfg(() => T0))
    expect(sandbox.tokenTtlSec).to.equal(3600)
    expect(t).to.deep.equal({ token: log.tokens[0], expiresAt: T0 + 3_600_000, refreshAt: T0 + 2_880_000 })
    const [req] = log.seen(TOKEN_PATH)
    expect(req.code, 'the sandbox checked the sign').to.equal(0)
    expect(verifySign(req.params!, sandbox.appSecret)).to.equal(true)
    expect(req.params).to.include({ appid: sandbox.appId, grant_type: 'client_credential', version: '1.0.0', timestamp: String(T0 / 1000) })
    expect(req.params).to.not.have.property('access_token')
  })

  it('a non-zero code → GatError api; a malformed data → invalid-response', async () => {
    sandbox.refuse({ path: TOKEN_PATH, code: 1000210001, msg: 'appid不存在' })
    sandbox.respondWith({ path: TOKEN_PATH, body: { code: 0, msg: 'OK', data: { access_token: '', expires_in: 3600 } } })
    sandbox.respondWith({ path: TOKEN_PATH, body: { code: 0, msg: 'OK', data: { access_token: 'x', expires_in: -5 } } })
    const kinds: string[] = []
    for (let i = 0; i < 3; i++) kinds.push((await caught(createToken(cfg(() => T0)))).kind)
    expect(kinds).to.deep.equal(['api', 'invalid-response', 'invalid-response'])
  })
})

describe('client/token: TokenManager with a shared cache that goes away', () => {
  it('keeps using the token this process saw until it expires, then reports the cache error', async () => {
    let clock = T0
    let created = 0
    const cache = new PlainCache()
    const logger = recordingLogger()
    const manager = new TokenManager({
      cache, now: () => clock, logger,
      create: async () => ({ token: `tok${++created}`, expiresAt: clock + 100_000, refreshAt: clock + 80_000 }),
    })
    expect(await manager.get()).to.equal('tok1')
    cache.get = () => Promise.reject(new Error('redis down'))
    clock += 90_000 // past refreshAt: the manager must ask the cache, which fails
    expect(await manager.get()).to.equal('tok1')
    expect(logger.warnings.some((w) => /token cache unreachable/.test(w))).to.equal(true)
    clock += 20_000 // past expiresAt
    let thrown: unknown
    try { await manager.get() } catch (err) { thrown = err }
    expect((thrown as Error)?.message).to.equal('redis down')
    expect(created).to.equal(1)
  })

  it('does not read the cache again while its own copy is before refreshAt', async () => {
    let reads = 0
    const cache = new PlainCache()
    const get = cache.get.bind(cache)
    cache.get = () => { reads++; return get() }
    const manager = new TokenManager({
      cache, now: () => T0, logger: recordingLogger(),
      create: async () => ({ token: 'tok', expiresAt: T0 + 100_000, refreshAt: T0 + 80_000 }),
    })
    await manager.get()
    const afterFirst = reads
    await Promise.all([manager.get(), manager.get(), manager.get()])
    expect(reads).to.equal(afterFirst)
  })
})
