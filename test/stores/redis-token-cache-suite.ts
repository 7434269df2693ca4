/**
 * The RedisTokenCache tests, run against the machine's Redis (redis-token-cache.test.ts) and a
 * Redis Cluster (test/cluster/stores.test.ts), with ioredis and node-redis.
 */
import { expect } from 'chai'
import { GuanaitongError } from '../../src/kernel/errors'
import { RedisTokenCache } from '../../src/stores/redis-token-cache'
import type { CachedToken } from '../../src/kernel/types'
import { deleteKeys, keysUnder, uniquePrefix, type IoredisClient, type RedisTarget } from './redis-helpers'
import { sleep } from '../helpers'

function token(value: string, { lifeMs = 7_200_000, refreshInMs = lifeMs * 0.8 }: { lifeMs?: number; refreshInMs?: number } = {}): CachedToken {
  const now = Date.now()
  return { token: value, expiresAt: now + lifeMs, refreshAt: now + refreshInMs }
}

/** A fetch that counts its calls, takes `delayMs`, and returns T1, T2, ... */
function countingFetch(delayMs = 200) {
  const f = async () => {
    f.calls++
    const n = f.calls
    await sleep(delayMs)
    return token(`T${n}`)
  }
  f.calls = 0
  return f
}

export function redisTokenCacheSuite(target: RedisTarget): void {
  describe(`RedisTokenCache (${target.name})`, () => {
    const prefix = uniquePrefix('token')
    let counter = 0
    /** A prefix of its own for one test. */
    const fresh = () => `${prefix}${++counter}:`
    const connections: IoredisClient[] = []
    const connect = async () => {
      const c = await target.ioredis()
      connections.push(c)
      return c
    }
    let admin: IoredisClient

    before(async () => {
      admin = await connect()
    })

    after(async () => {
      if (!admin) return
      await deleteKeys(admin, prefix)
      expect(await keysUnder(admin, prefix)).to.deep.equal([])
      for (const c of connections) c.disconnect()
    })

    it('set then get returns the token; the key expires with the token', async () => {
      const p = fresh()
      const cache = new RedisTokenCache({ client: admin, prefix: p })
      expect(await cache.get()).to.equal(null)
      const t = token('abc', { lifeMs: 60_000 })
      await cache.set(t)
      expect(await cache.get()).to.deep.equal(t)
      const ttl = await admin.pttl(`${p}current`)
      expect(ttl).to.be.within(58_000, 60_000)
      expect(JSON.parse((await admin.get(`${p}current`))!)).to.deep.equal(t)
    })

    it('does not store a token that already expired, and get ignores expired or malformed values', async () => {
      const p = fresh()
      const cache = new RedisTokenCache({ client: admin, prefix: p })
      await cache.set({ token: 'old', expiresAt: Date.now() - 1, refreshAt: Date.now() - 1000 })
      expect(await admin.exists(`${p}current`)).to.equal(0)
      await admin.set(`${p}current`, 'not json', 'PX', 60_000)
      expect(await cache.get()).to.equal(null)
      await admin.set(`${p}current`, JSON.stringify({ token: 'x', expiresAt: Date.now() - 5, refreshAt: 0 }), 'PX', 60_000)
      expect(await cache.get()).to.equal(null, 'expired by this instance\'s clock')
      await admin.set(`${p}current`, JSON.stringify({ token: 1, expiresAt: 'soon' }), 'PX', 60_000)
      expect(await cache.get()).to.equal(null)
    })

    it('invalidate drops only the matching token', async () => {
      const cache = new RedisTokenCache({ client: admin, prefix: fresh() })
      const t = token('current-token')
      await cache.set(t)
      await cache.invalidate('some-older-token')
      expect(await cache.get()).to.deep.equal(t)
      await cache.invalidate('current-tok')
      expect(await cache.get()).to.deep.equal(t)
      await cache.invalidate('current-token')
      expect(await cache.get()).to.equal(null)
      await cache.invalidate('current-token') // nothing there: no error
    })

    it('20 concurrent refreshes across 3 instances on separate connections: fetch runs once, all get its token', async () => {
      const p = fresh()
      const caches = await Promise.all([0, 1, 2].map(async () => new RedisTokenCache({ client: await connect(), prefix: p })))
      const fetch = countingFetch(200)
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => caches[i % 3].refresh(fetch)))
      expect(fetch.calls).to.equal(1)
      expect(new Set(results.map((r) => r.token))).to.deep.equal(new Set(['T1']))
      expect((await caches[2].get())?.token).to.equal('T1')
      expect(await admin.exists(`${p}lock`)).to.equal(0, 'the lock is freed')
    })

    it('shares one in-flight refresh between callers of one instance', async () => {
      const cache = new RedisTokenCache({ client: admin, prefix: fresh() })
      const fetch = countingFetch(100)
      const a = cache.refresh(fetch)
      const b = cache.refresh(fetch)
      expect(a).to.equal(b)
      await a
      expect(fetch.calls).to.equal(1)
    })

    it('a fresh token short-circuits refresh: no fetch', async () => {
      const cache = new RedisTokenCache({ client: admin, prefix: fresh() })
      const t = token('already-fresh')
      await cache.set(t)
      const fetch = countingFetch(10)
      expect(await cache.refresh(fetch)).to.deep.equal(t)
      expect(fetch.calls).to.equal(0)
    })

    it('a token due for refresh (refreshAt past) is replaced', async () => {
      const cache = new RedisTokenCache({ client: admin, prefix: fresh() })
      await cache.set(token('due', { lifeMs: 60_000, refreshInMs: -1 }))
      const fetch = countingFetch(10)
      expect((await cache.refresh(fetch)).token).to.equal('T1')
      expect(fetch.calls).to.equal(1)
      expect((await cache.get())?.token).to.equal('T1')
    })

    it('after invalidate, a refresh fetches a new token once across instances', async () => {
      const p = fresh()
      const a = new RedisTokenCache({ client: await connect(), prefix: p })
      const b = new RedisTokenCache({ client: await connect(), prefix: p })
      await a.set(token('revoked'))
      await a.invalidate('revoked')
      const fetch = countingFetch(100)
      const [ra, rb] = await Promise.all([a.refresh(fetch), b.refresh(fetch)])
      expect(fetch.calls).to.equal(1)
      expect(ra.token).to.equal('T1')
      expect(rb.token).to.equal('T1')
    })

    it('when the winner\'s fetch fails, its callers get the error and a waiting instance fetches itself', async () => {
      const p = fresh()
      const a = new RedisTokenCache({ client: await connect(), prefix: p })
      const b = new RedisTokenCache({ client: await connect(), prefix: p })
      const failure = new Error('upstream down')
      let failingCalls = 0
      const failing = async (): Promise<CachedToken> => {
        failingCalls++
        await sleep(150)
        throw failure
      }
      const working = countingFetch(20)
      const pa = a.refresh(failing)
      await sleep(30) // a holds the lock
      const pb = b.refresh(working)
      let error: unknown
      try {
        await pa
      } catch (err) {
        error = err
      }
      expect(error).to.equal(failure)
      expect((await pb).token).to.equal('T1')
      expect(failingCalls).to.equal(1)
      expect(working.calls).to.equal(1)
    })

    it('when the lock holder disappears without a token, a waiter takes the lock once it expires', async () => {
      const p = fresh()
      await admin.set(`${p}lock`, 'a-dead-instance', 'PX', 300)
      const cache = new RedisTokenCache({ client: admin, prefix: p })
      const fetch = countingFetch(10)
      const started = Date.now()
      expect((await cache.refresh(fetch)).token).to.equal('T1')
      expect(Date.now() - started).to.be.at.least(250)
      expect(fetch.calls).to.equal(1)
    })

    it('gives up after waitMs with a clear error when another instance holds the lock without result', async () => {
      const p = fresh()
      await admin.set(`${p}lock`, 'a-slow-instance', 'PX', 5000)
      const cache = new RedisTokenCache({ client: admin, prefix: p, waitMs: 200 })
      const fetch = countingFetch(10)
      let error: unknown
      try {
        await cache.refresh(fetch)
      } catch (err) {
        error = err
      }
      expect(error).to.be.instanceOf(GuanaitongError)
      expect((error as GuanaitongError).code).to.equal('TOKEN_REFRESH_TIMEOUT')
      expect(fetch.calls).to.equal(0)
      await admin.del(`${p}lock`)
    })

    it('does not release a lock it no longer holds', async () => {
      const p = fresh()
      const cache = new RedisTokenCache({ client: admin, prefix: p, lockMs: 100 })
      const fetch = async () => {
        await sleep(200) // the lock expires meanwhile; someone else takes it
        await admin.set(`${p}lock`, 'someone-else', 'PX', 5000)
        return token('slow')
      }
      expect((await cache.refresh(fetch)).token).to.equal('slow')
      expect(await admin.get(`${p}lock`)).to.equal('someone-else')
      await admin.del(`${p}lock`)
    })

    it('works with node-redis', async () => {
      const client = await target.nodeRedis()
      try {
        const p = fresh()
        const cache = new RedisTokenCache({ client, prefix: p })
        const other = new RedisTokenCache({ client: admin, prefix: p })
        const fetch = countingFetch(100)
        const [x, y] = await Promise.all([cache.refresh(fetch), other.refresh(fetch)])
        expect(fetch.calls).to.equal(1)
        expect(x.token).to.equal('T1')
        expect(y.token).to.equal('T1')
        await cache.invalidate('T1')
        expect(await other.get()).to.equal(null)
      } finally {
        client.destroy()
      }
    })
  })
}
