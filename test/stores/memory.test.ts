import { spawnSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { expect } from 'chai'
import { ConfigError, GuanaitongError, ParamError } from '../../src/kernel/errors'
import type { UnsettledRecord } from '../../src/kernel/types'
import { MemoryStore } from '../../src/stores/memory'
import { storeConformance } from '../../src/testing/conformance'
import { quietLogger } from '../../src/testing/quiet-logger'
import { dedupeNotification } from '../../src/adapters/express/dedupe'
import { notifyState } from '../../src/adapters/express/state'
import { resolveOptions } from '../../src/guanaitong'
import { count, registerSdk } from '../observe/otel-sdk'
import { packageStoreAnswers } from './store-answers'

storeConformance('MemoryStore', (opts) => new MemoryStore(opts))

/** A clock the test moves by hand. */
function fakeClock(start = 1_700_000_000_000) {
  let t = start
  return { now: () => t, advance: (ms: number) => { t += ms } }
}

async function claimed(store: MemoryStore, key: string) {
  const r = await store.claim(key)
  if (r.status !== 'claimed') throw new Error(`expected claimed for ${key}, got ${r.status}`)
  return r
}

describe('MemoryStore', () => {
  describe('options', () => {
    it('has the documented defaults', () => {
      const s = new MemoryStore()
      expect(s.leaseMs).to.equal(60_000)
      expect(s.retentionMs).to.equal(25 * 60 * 60 * 1000)
      expect(s.maxEntries).to.equal(100_000)
    })

    for (const [name, bad] of [
      ['leaseMs', 0], ['leaseMs', -1], ['leaseMs', 1.5], ['leaseMs', '60000'], ['leaseMs', Number.NaN], ['leaseMs', Infinity],
      ['retentionMs', 0], ['retentionMs', null], ['maxEntries', 0], ['maxEntries', 10.5], ['now', 123],
    ] as const) {
      it(`rejects ${name}: ${String(bad)} with a ConfigError that says what to do`, () => {
        expect(() => new MemoryStore({ [name]: bad } as never)).to.throw(ConfigError, new RegExp(name))
      })
    }

    it('names the default in the message', () => {
      expect(() => new MemoryStore({ leaseMs: -5 })).to.throw(/Omit it for the default 60000/)
    })

    it('names the store, the option and what it means', () => {
      expect(() => new MemoryStore({ leaseMs: 0 })).to.throw(
        'MemoryStore: leaseMs must be a positive whole number of milliseconds, at most 2147483647 (how long a claim lasts before another request may take over)')
      expect(() => new MemoryStore({ retentionMs: 0 })).to.throw(
        'MemoryStore: retentionMs must be a positive whole number of milliseconds, at most 2147483647 (how long a done-marker is kept; keep it above 24 h (Guanaitong retries for 24 h))')
      expect(() => new MemoryStore({ maxEntries: 0 })).to.throw('MemoryStore: maxEntries must be a positive whole number (the most keys held in memory)')
    })

    it('rejects options that are not an object with a ConfigError', () => {
      for (const bad of [null, 5, 'x']) {
        expect(() => new MemoryStore(bad as never), String(bad)).to.throw(ConfigError, /^\[express-guanaitong\] MemoryStore: options are required as an object, e\.g\. \{ leaseMs: 60000 \}/)
      }
    })
  })

  describe('expiry with an injected clock', () => {
    it('a claim expires after leaseMs and a done-marker after retentionMs', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
      const first = await claimed(s, 'k')
      clock.advance(999)
      expect(await s.claim('k')).to.deep.equal({ status: 'busy' })
      clock.advance(1)
      const second = await claimed(s, 'k')
      expect(second.attempt).to.equal(2, 'a claim whose lease ran out counts as an attempt')
      expect(await s.complete('k', first.owner)).to.equal(false)
      expect(await s.complete('k', second.owner)).to.equal(true)
      clock.advance(4999)
      expect(await s.claim('k')).to.include({ status: 'done' })
      clock.advance(1)
      const third = await claimed(s, 'k')
      expect(third.attempt).to.equal(1, 'after the done-marker expired the key is new')
    })

    it('an owner whose lease ran out but was not taken over can still complete', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, now: clock.now })
      const r = await claimed(s, 'k')
      clock.advance(5000)
      expect(await s.complete('k', r.owner)).to.equal(true)
      expect(await s.claim('k')).to.include({ status: 'done' })
    })

    it("a released key's attempt counter is kept retentionMs from its release", async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
      const r = await claimed(s, 'k')
      await s.release('k', r.owner)
      clock.advance(4999)
      const r2 = await claimed(s, 'k')
      expect(r2.attempt).to.equal(2)
      await s.release('k', r2.owner)
      clock.advance(5000)
      expect((await claimed(s, 'k')).attempt).to.equal(1)
    })

    it('an extended claim keeps its attempt counter retentionMs, not just leaseMs', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
      const r = await claimed(s, 'k')
      clock.advance(500)
      expect(await s.extend('k', r.owner)).to.equal(true)
      clock.advance(2000)
      expect((await claimed(s, 'k')).attempt).to.equal(2)
    })

    describe('an entry that expired behind an older, longer-lived one (so the sweep stops before it)', () => {
      /**
       * `older` is claimed first and renewed later, so it sits at the oldest end and expires last;
       * `k` is set up by `prepare` at T+1 and expires at T+5001. The clock ends at exactly T+5001.
       */
      async function behindOlder(prepare: (s: MemoryStore) => Promise<void>) {
        const clock = fakeClock()
        const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
        const older = await claimed(s, 'older')
        clock.advance(1)
        await prepare(s)
        clock.advance(1999)
        expect(await s.extend('older', older.owner)).to.equal(true)
        clock.advance(3001)
        expect(s.size).to.equal(2)
        return s
      }

      it('a done-marker is gone at exactly retentionMs: the key is new again', async () => {
        const s = await behindOlder(async (s) => { await s.complete('k', (await claimed(s, 'k')).owner) })
        expect(await claimed(s, 'k')).to.include({ attempt: 1 })
      })

      it("a released key's attempt counter is gone at exactly retentionMs", async () => {
        const s = await behindOlder(async (s) => { await s.release('k', (await claimed(s, 'k')).owner) })
        expect(await claimed(s, 'k')).to.include({ attempt: 1 })
      })

      it('peek finds it gone too (open) and drops it', async () => {
        const s = await behindOlder(async (s) => { await s.complete('k', (await claimed(s, 'k')).owner, 'memo') })
        expect(await s.peek('k')).to.deep.equal({ status: 'open', watched: false })
        expect(s.size).to.equal(1)
      })

      it('its owner can no longer complete it', async () => {
        let owner = ''
        const s = await behindOlder(async (s) => { owner = (await claimed(s, 'k')).owner })
        expect(await s.complete('k', owner)).to.equal(false)
      })
    })

    it('extend renews the lease from now', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, now: clock.now })
      const r = await claimed(s, 'k')
      clock.advance(900)
      expect(await s.extend('k', r.owner)).to.equal(true)
      clock.advance(999)
      expect(await s.claim('k')).to.deep.equal({ status: 'busy' })
      clock.advance(1)
      await claimed(s, 'k')
    })

    it('peek and claim agree at the exact end of a lease: busy a millisecond before, open at it', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, now: clock.now })
      await claimed(s, 'k')
      clock.advance(999)
      expect(await s.peek('k')).to.deep.equal({ status: 'busy', watched: false })
      clock.advance(1)
      expect(await s.peek('k')).to.deep.equal({ status: 'open', watched: false })
      expect((await claimed(s, 'k')).attempt).to.equal(2)
    })

    describe('a clock stepped back (Date.now is not monotonic: an NTP step) after a release', () => {
      /** `key` claimed at T, released at T+500, and the clock then set back to T+100: before the release. */
      async function releasedThenSteppedBack(s: MemoryStore, clock: ReturnType<typeof fakeClock>, key: string) {
        const r = await claimed(s, key)
        clock.advance(500)
        expect(await s.release(key, r.owner)).to.equal(true)
        clock.advance(-400)
      }

      it('the released key is free, not busy: peek says open, a claim takes it as attempt 2', async () => {
        const clock = fakeClock()
        const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
        await releasedThenSteppedBack(s, clock, 'k')
        expect(await s.peek('k')).to.deep.equal({ status: 'open', watched: false })
        expect((await claimed(s, 'k')).attempt).to.equal(2)
      })

      it('the released key is evicted at the bound like any free key, not kept as a live claim', async () => {
        const clock = fakeClock()
        const s = new MemoryStore({ maxEntries: 2, leaseMs: 1000, retentionMs: 5000, now: clock.now, logger: quietLogger() })
        await releasedThenSteppedBack(s, clock, 'free')
        await claimed(s, 'b')
        await claimed(s, 'c')
        expect(s.size).to.equal(2)
        expect(await s.claim('b')).to.deep.equal({ status: 'busy' })
      })
    })

    it('sweeps expired entries from the oldest end as calls come in, without being touched', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
      for (let i = 0; i < 100; i++) {
        const r = await claimed(s, `old-${i}`)
        await s.complete(`old-${i}`, r.owner)
      }
      expect(s.size).to.equal(100)
      clock.advance(5000)
      for (let i = 0; i < 20; i++) await s.claim(`new-${i}`)
      expect(s.size).to.equal(20, 'every old done-marker is gone after a few calls')
    })

    it('sweeps claims and released keys too, at exactly the end of their retention', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ leaseMs: 1000, retentionMs: 5000, now: clock.now })
      for (let i = 0; i < 50; i++) {
        const r = await claimed(s, `old-${i}`)
        if (i % 2) await s.release(`old-${i}`, r.owner)
      }
      clock.advance(5000)
      for (let i = 0; i < 20; i++) await s.claim(`new-${i}`)
      expect(s.size).to.equal(20)
    })
  })

  describe('bound', () => {
    it('holds at most maxEntries keys, evicting the oldest done-markers first', async () => {
      const s = new MemoryStore({ maxEntries: 10, logger: quietLogger() })
      for (let i = 0; i < 25; i++) {
        const r = await claimed(s, `k${i}`)
        await s.complete(`k${i}`, r.owner)
        expect(s.size).to.be.at.most(10)
      }
      expect(s.size).to.equal(10)
      for (let i = 15; i < 25; i++) expect(await s.claim(`k${i}`), `k${i}`).to.include({ status: 'done' })
      // k14 was evicted: it is new again, and claiming it evicts the oldest survivor, k15.
      expect((await claimed(s, 'k14')).attempt).to.equal(1)
      expect(s.size).to.equal(10)
      expect((await claimed(s, 'k15')).attempt).to.equal(1)
      expect(await s.claim('k24')).to.include({ status: 'done' })
    })

    it('never evicts a live claim while a done-marker or free key can go', async () => {
      const s = new MemoryStore({ maxEntries: 5, logger: quietLogger() })
      const live = await claimed(s, 'live-oldest')
      for (let i = 0; i < 4; i++) {
        const r = await claimed(s, `done-${i}`)
        await s.complete(`done-${i}`, r.owner)
      }
      for (let i = 0; i < 20; i++) await claimed(s, `new-${i}`).then((r) => s.release(`new-${i}`, r.owner))
      expect(s.size).to.equal(5)
      expect(await s.claim('live-oldest')).to.deep.equal({ status: 'busy' })
      expect(await s.complete('live-oldest', live.owner)).to.equal(true)
    })

    it('evicts done-markers and free keys from behind live claims until it is back at the bound', async () => {
      const s = new MemoryStore({ maxEntries: 3, logger: quietLogger() })
      await claimed(s, 'live-1')
      await claimed(s, 'live-2')
      await s.complete('done', (await claimed(s, 'done')).owner)
      await claimed(s, 'new')
      expect(s.size).to.equal(3)
      expect(await s.claim('live-1')).to.deep.equal({ status: 'busy' })
      expect(await s.claim('live-2')).to.deep.equal({ status: 'busy' })
    })

    it('a claim whose lease ends exactly now is no longer live: it can be evicted', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ maxEntries: 2, leaseMs: 1000, retentionMs: 100_000, now: clock.now })
      await claimed(s, 'a')
      await claimed(s, 'b')
      clock.advance(1000)
      await claimed(s, 'c')
      expect(s.size).to.equal(2)
    })

    it('after re-claiming an expired key in the middle, still evicts the oldest free key, not a newer done-marker', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ maxEntries: 3, leaseMs: 1000, retentionMs: 5000, now: clock.now, logger: quietLogger() })
      const a = await claimed(s, 'a')
      clock.advance(1)
      await s.complete('b', (await claimed(s, 'b')).owner)
      clock.advance(1)
      await s.complete('c', (await claimed(s, 'c')).owner)
      clock.advance(1998)
      // a is freed: it stays at the oldest end and now expires last.
      expect(await s.release('a', a.owner)).to.equal(true)
      clock.advance(3001)
      // b's done-marker expired, a (older) did not: b is dropped from the middle and claimed anew.
      await claimed(s, 'b')
      await claimed(s, 'd')
      expect(s.size).to.equal(3)
      expect(await s.claim('c'), 'the done-marker of c must survive').to.include({ status: 'done' })
      expect((await claimed(s, 'a')).attempt, 'a, the oldest free key, was the one evicted').to.equal(1)
    })

    it('evicts an expired claim before a live one', async () => {
      const clock = fakeClock()
      const s = new MemoryStore({ maxEntries: 2, leaseMs: 1000, retentionMs: 100_000, now: clock.now })
      await claimed(s, 'a')
      clock.advance(2000)
      const b = await claimed(s, 'b')
      await claimed(s, 'c')
      expect(s.size).to.equal(2)
      expect(await s.claim('b')).to.deep.equal({ status: 'busy' })
      expect(await s.complete('b', b.owner)).to.equal(true)
    })

    it('a done-marker that expired behind a live claim is dropped without a warning: it was due to go', async () => {
      const clock = fakeClock()
      const logger = quietLogger()
      const s = new MemoryStore({ maxEntries: 2, leaseMs: 100_000, retentionMs: 5000, now: clock.now, logger })
      await claimed(s, 'live')
      await s.complete('d', (await claimed(s, 'd')).owner)
      // d's marker ends exactly now; the live claim before it stops the sweep, so the eviction meets it.
      clock.advance(5000)
      await claimed(s, 'new')
      expect(s.size).to.equal(2)
      expect(logger.lines).to.deep.equal([])
      expect(await s.claim('live')).to.deep.equal({ status: 'busy' })
    })

    it('when every entry is a live claim, claims still work and the store goes over the bound', async () => {
      const s = new MemoryStore({ maxEntries: 3, logger: quietLogger() })
      const owners = []
      for (let i = 0; i < 6; i++) owners.push(await claimed(s, `live-${i}`))
      expect(s.size).to.equal(6)
      for (let i = 0; i < 6; i++) expect(await s.claim(`live-${i}`)).to.deep.equal({ status: 'busy' })
      for (let i = 0; i < 6; i++) expect(await s.complete(`live-${i}`, owners[i].owner)).to.equal(true)
      // Once the claims are done, the next new key brings the store back to its bound.
      await claimed(s, 'next')
      expect(s.size).to.equal(3)
      expect(await s.claim('live-5')).to.include({ status: 'done' })
    })
  })

  describe('a done-marker evicted before retentionMs (the store is full)', () => {
    it('maxEntries: 2, A1 A2 A3 A1 → A1 is settled twice; the eviction is logged as a warning naming A1', async () => {
      const clock = fakeClock()
      const logger = quietLogger()
      const s = new MemoryStore({ maxEntries: 2, retentionMs: 100_000, now: clock.now, logger })
      // Not at the store's time 0, so "settled … ago" is measured from the settlement, not from 0.
      clock.advance(500)
      for (const key of ['A1', 'A2']) {
        await s.complete(key, (await claimed(s, key)).owner)
        clock.advance(1000)
      }
      expect(logger.lines).to.deep.equal([])
      await s.complete('A3', (await claimed(s, 'A3')).owner)
      // A1's retry finds no done-marker: it is claimed (and its handler run) a second time.
      expect((await claimed(s, 'A1')).attempt).to.equal(1)
      expect(logger.lines.map((l) => [l.level, l.context])).to.deep.equal([
        ['warn', { reason: 'DONE_MARKER_EVICTED', key: 'A1' }],
        ['warn', { reason: 'DONE_MARKER_EVICTED', key: 'A2' }],
      ])
      expect(logger.lines[0].message).to.equal('[express-guanaitong] MemoryStore is full (maxEntries 2): evicted the done-marker of A1, ' +
        'settled 2 s ago, before its retentionMs (100 s); a retry of that payment would run its handler again. Raise maxEntries, or use RedisStore or a SQL store')
    })

    it('evicting a free key (a released claim) is not warned about: no payment was settled under it', async () => {
      const logger = quietLogger()
      const s = new MemoryStore({ maxEntries: 2, logger })
      await s.release('free', (await claimed(s, 'free')).owner)
      await claimed(s, 'b')
      await claimed(s, 'c')
      expect(s.size).to.equal(2)
      expect(logger.lines).to.deep.equal([])
    })

    it('a key with a line break is escaped in the message', async () => {
      const logger = quietLogger()
      const s = new MemoryStore({ maxEntries: 1, logger })
      await s.complete('a\nb', (await claimed(s, 'a\nb')).owner)
      await claimed(s, 'c')
      expect(logger.lines[0].message).to.contain('done-marker of a\\nb,')
    })

    it('is counted in the guanaitong.store.evictions metric', async () => {
      const sdk = registerSdk()
      try {
        const s = new MemoryStore({ maxEntries: 1, logger: quietLogger() })
        for (const key of ['x1', 'x2', 'x3']) await s.complete(key, (await claimed(s, key)).owner)
        expect(count(await sdk.collect(), 'guanaitong.store.evictions')).to.equal(2)
      } finally {
        await sdk.unregister()
      }
    })
  })

  describe('the unsettled ledger', () => {
    const record = (n: number, deadline = 1000 + n): UnsettledRecord => ({
      key: `20110698:paid:F${n}`, appId: '20110698', outerTradeNo: `F${n}`, totalAmount: '1.00', totalFen: 100,
      buyerOpenId: 'b', tradeNo: null, reason: 'AMBIGUOUS', since: 1, deadline,
    })
    const keys = async (s: MemoryStore) => (await s.listUnsettled()).map((r) => r.key)

    it('holds at most maxEntries records: one more is refused STORE_FULL and not stored; a held key may be replaced; a resolve makes room', async () => {
      const s = new MemoryStore({ maxEntries: 2 })
      await s.watchUnsettled(record(1))
      await s.watchUnsettled(record(2))
      let error: unknown
      try { await s.watchUnsettled(record(3)) } catch (err) { error = err }
      expect(error).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FULL')
      expect((error as GuanaitongError).status).to.equal(503)
      expect(await keys(s)).to.deep.equal([record(1).key, record(2).key])
      await s.watchUnsettled(record(2, 5))
      expect(await keys(s)).to.deep.equal([record(2).key, record(1).key], 'replaced at the bound')
      await s.resolveUnsettled(record(1).key)
      await s.watchUnsettled(record(3))
      expect(await keys(s)).to.deep.equal([record(2).key, record(3).key])
    })
  })

  packageStoreAnswers('MemoryStore', () => new MemoryStore(), (label) => label)

  describe('timers', () => {
    it('starts no timer or handle: a process using it exits on its own', function () {
      this.timeout(20_000)
      // In a child process, so the test runner's own timers do not count.
      const source = fileURLToPath(new URL('../../src/stores/memory.ts', import.meta.url))
      const script = `
        import { MemoryStore } from ${JSON.stringify(pathToFileURL(source).href)}
        const stores = Array.from({ length: 20 }, () => new MemoryStore({ leaseMs: 10, retentionMs: 20, maxEntries: 5 }))
        for (const s of stores) {
          for (let i = 0; i < 10; i++) {
            const r = await s.claim('k' + i)
            if (i % 2) await s.complete('k' + i, r.owner)
          }
        }
        console.log(JSON.stringify(process.getActiveResourcesInfo()))
      `
      const started = Date.now()
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8', timeout: 15_000,
      })
      expect(child.status, child.stderr).to.equal(0)
      // stdout and stderr are pipes here (PipeWrap); anything else would be the store's.
      const resources = (JSON.parse(child.stdout.trim()) as string[]).filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap')
      expect(resources).to.deep.equal([])
      expect(Date.now() - started).to.be.below(10_000)
    })
  })

  it('owner tokens look random (UUIDs)', async () => {
    const s = new MemoryStore()
    const r = await claimed(s, 'k')
    expect(r.owner).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('rejects a non-string or empty key with a ParamError naming it', async () => {
    const s = new MemoryStore()
    for (const key of [42, '']) {
      let error: unknown
      try { await s.claim(key as never) } catch (err) { error = err }
      expect(error, String(key)).to.be.instanceOf(ParamError).with.property('field', 'key')
    }
  })

  it('a released key belongs to nobody: a null owner cannot complete, release or extend it', async () => {
    const s = new MemoryStore()
    const r = await claimed(s, 'k')
    expect(await s.release('k', r.owner)).to.equal(true)
    expect(await s.complete('k', null as never)).to.equal(false)
    expect(await s.release('k', null as never)).to.equal(false)
    expect(await s.extend('k', null as never)).to.equal(false)
  })
})

describe('the MemoryStore the router and dedupeNotification() create log their evictions to the given logger', () => {
  const fill = async (store: MemoryStore) => {
    for (let i = 0; i <= store.maxEntries; i++) await store.complete(`k${i}`, (await claimed(store, `k${i}`)).owner)
  }

  it('guanaitong({ logger }) without a store', async function () {
    this.timeout(20_000)
    const logger = quietLogger()
    const { store } = resolveOptions({ appId: '20110698', appSecret: 's', onPaid: () => {}, payPath: false, logger })
    await fill(store as MemoryStore)
    expect(logger.lines.filter((l) => l.context?.reason === 'DONE_MARKER_EVICTED').map((l) => l.context?.key)).to.deep.equal(['k0'])
  })

  it('dedupeNotification({ logger }) without a store', async function () {
    this.timeout(20_000)
    const logger = quietLogger()
    const res = { locals: {} } as never
    await new Promise<void>((resolve) => dedupeNotification({ logger })({} as never, res, () => resolve()))
    await fill(notifyState(res).dedupe!.store as MemoryStore)
    expect(logger.lines.filter((l) => l.context?.reason === 'DONE_MARKER_EVICTED').map((l) => l.context?.key)).to.deep.equal(['k0'])
  })
})
