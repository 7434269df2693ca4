import { expect } from 'chai'
import { Cluster, Redis } from 'ioredis'
import { createClient } from 'redis'
import { ConfigError, GuanaitongError, ParamError } from '../../src/kernel/errors'
import { createSettlement } from '../../src/core/settle/settle'
import { notificationKey } from '../../src/core/settle/key'
import type { Notification, UnsettledRecord } from '../../src/kernel/types'
import { RedisStore } from '../../src/stores/redis'
import { LuaScript, redisAdapter } from '../../src/stores/redis-adapter'
import { storeConformance } from '../../src/testing/conformance'
import { countSocketWrites, type CountedSocket, deleteKeys, keySlot, keysUnder, REDIS_URL, settlingOn, spyOnCommands, uniquePrefix, unusedPort } from './redis-helpers'
import { sleep } from '../helpers'
import { packageStoreAnswers } from './store-answers'

const prefix = uniquePrefix('store')
let admin: Redis

async function claimed(store: RedisStore, key: string) {
  const r = await store.claim(key)
  if (r.status !== 'claimed') throw new Error(`expected claimed for ${key}, got ${r.status}`)
  return r
}

/** More replicas than this Redis has: WAIT for them always falls short. */
async function moreReplicasThanThereAre(): Promise<number> {
  const m = /connected_slaves:(\d+)/.exec(await admin.info('replication'))
  return Number(m?.[1] ?? 0) + 1
}

/** complete() with a WAIT that falls short: rejects STORE_NOT_REPLICATED after waitTimeoutMs, the marker stays. */
async function expectWaitShortfall(store: RedisStore, replicas: number): Promise<void> {
  const key = `20110698:paid:short${Date.now()}`
  const r = await claimed(store, key)
  const started = performance.now()
  let error: unknown
  try {
    await store.complete(key, r.owner)
  } catch (err) {
    error = err
  }
  const tookMs = performance.now() - started
  expect(error).to.be.instanceOf(GuanaitongError)
  expect((error as GuanaitongError).code).to.equal('STORE_NOT_REPLICATED')
  expect((error as Error).message).to.include(`reached 0 of ${replicas} replica(s) within 150 ms`)
  expect(tookMs, 'complete waited for the replicas').to.be.at.least(140)
  expect(await store.claim(key), 'the done-marker is stored on the primary').to.include({ status: 'done' })
}

/**
 * Round trips through the settlement core (issue 20), counted at the client the store uses: a
 * new notification is 2 (claim, complete), a duplicate 1; an order outside the ledger costs no
 * ledger call, a watched one an unmark plus its share of a batched removal, off the answer's path.
 */
function roundTrips(library: string, getClient: () => object) {
  const payment = (label: string, i: number, overrides: Partial<Notification> = {}): Notification => ({
    appId: '20110698', outerTradeNo: `${label}${i}`, tradeNo: `T${i}`, buyerOpenId: 'b', totalAmount: '1.00', totalFen: 100,
    attach: '', timestamp: 0, raw: {}, ...overrides,
  })
  const setup = async (label: string) => {
    const spy = spyOnCommands(getClient())
    const store = new RedisStore({ client: spy.client, prefix: `${prefix}rt-${library}-${label}:` })
    const mismatches: unknown[] = []
    const settle = createSettlement({ onPaid: () => undefined, onPayFailed: () => undefined, onMismatch: (m) => { mismatches.push(m) }, logger: { warn() {}, error() {} } })
    const run = (n: Notification, source: 'pay' | 'notify' = 'notify') => settle({ notification: n, req: {} as never, source, store })
    // Every script cached, so each call is one EVALSHA.
    await run(payment(`${label}warm`, 0))
    await run(payment(`${label}warm`, 1, { tradeNo: '' }))
    await store.watchUnsettled(recordOf(payment(`${label}warm`, 2)))
    await run(payment(`${label}warm`, 2))
    await sleep(20)
    spy.sent.length = 0
    /** The commands sent while `fn` ran, the ledger removals it started included. */
    const during = async (fn: () => Promise<unknown>) => {
      spy.sent.length = 0
      await fn()
      await sleep(50)
      return spy.sent.splice(0)
    }
    return { spy, store, run, during, mismatches }
  }
  const recordOf = (n: Notification): UnsettledRecord => ({
    key: notificationKey(n), appId: n.appId, outerTradeNo: n.outerTradeNo, totalAmount: n.totalAmount, totalFen: n.totalFen,
    buyerOpenId: n.buyerOpenId, tradeNo: null, reason: 'AMBIGUOUS', since: 1e11, deadline: 9e12,
  })
  const names = (sent: string[][]) => sent.map((args) => args[0].toLowerCase())

  it(`${library}: 20 new notifications at once are 40 round trips (claim, complete), their 20 duplicates 20; no ledger call`, async () => {
    const { run, during, store } = await setup('new')
    const batch = Array.from({ length: 20 }, (_, i) => payment('N', i))
    const fresh = await during(() => Promise.all(batch.map((n) => run(n))))
    expect(names(fresh)).to.deep.equal(Array(40).fill('evalsha'))
    expect(fresh.some((args) => args.includes(store.unsettledKeys[0]) || args.includes(store.unsettledKeys[1])), 'no ledger call').to.equal(false)
    const dups = await during(() => Promise.all(batch.map((n) => run(n))))
    expect(names(dups)).to.deep.equal(Array(20).fill('evalsha'))
    // The notification after the pay answer settled the order: one round trip too.
    const paidOnPay = payment('P', 1)
    expect(names(await during(() => run(paidOnPay, 'pay')))).to.deep.equal(['evalsha', 'evalsha'])
    expect(names(await during(() => run(paidOnPay)))).to.deep.equal(['evalsha'])
  })

  it(`${library}: 10 watched orders settling at once each add an unmark and share their ledger removal calls, and leave the ledger`, async () => {
    const { run, during, store } = await setup('watched')
    const batch = Array.from({ length: 10 }, (_, i) => payment('W', i))
    for (const n of batch) await store.watchUnsettled(recordOf(n))
    const sent = await during(() => Promise.all(batch.map((n) => run(n))))
    const removals = sent.filter((args) => args.includes(store.unsettledKeys[0]))
    expect(sent.length - removals.length).to.equal(30, 'claim, complete and unmark per order')
    expect(removals.length).to.be.within(1, 10)
    const mine = new Set(batch.map((n) => notificationKey(n)))
    expect((await store.listUnsettled(100_000)).filter((r) => mine.has(r.key))).to.deep.equal([])
    expect(names(await during(() => Promise.all(batch.map((n) => run(n)))))).to.deep.equal(Array(10).fill('evalsha'), 'duplicates once the marks are cleared')
  })

  it(`${library}: a failure notice is 3 round trips (peek the payment key, claim, complete), its duplicate 2; after a payment, 1 and nothing runs`, async () => {
    const { run, during, mismatches } = await setup('failed')
    const failed = payment('F', 1, { tradeNo: '' })
    expect(names(await during(() => run(failed)))).to.deep.equal(['evalsha', 'evalsha', 'evalsha'])
    expect(names(await during(() => run(failed)))).to.deep.equal(['evalsha', 'evalsha'])
    const paid = payment('F', 2)
    await run(paid)
    const late = await during(() => run({ ...paid, tradeNo: '' }))
    expect(names(late)).to.deep.equal(['evalsha'])
    expect(mismatches).to.have.length(1)
  })
}

describe('RedisStore (real Redis)', () => {
  before(async function () {
    admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await admin.connect()
  })

  after(async () => {
    if (!admin) return
    await deleteKeys(admin, prefix)
    expect(await keysUnder(admin, prefix)).to.deep.equal([], 'every test key is cleaned up')
    admin.disconnect()
  })

  describe('RedisStore with ioredis', () => {
    let client: Redis
    before(async () => {
      client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 2000 })
      await client.connect()
    })
    after(() => client?.disconnect())

    storeConformance('RedisStore (ioredis)', (opts) => new RedisStore({ client, prefix: `${prefix}io:`, ...opts }))

    it('is detected as ioredis', () => {
      expect(redisAdapter(client, 'test').kind).to.equal('ioredis')
    })

    it('keeps both keys of a notification in one hash slot, whatever the key contains', async () => {
      const p = `${prefix}slot:`
      const store = new RedisStore({ client, prefix: p })
      const keys = ['20110698:paid:A1', 'a{b}c', '}{', '{', '}', '{}', '}}', '\\}', '\\', 'x}y{z', '中文', `${'long'.repeat(100)}`]
      for (const key of keys) {
        const r = await claimed(store, key)
        const written = (await keysUnder(admin, p)).filter((k) => k.startsWith(store.keysOf(key)[0]))
        expect(written.length, key).to.be.at.least(2, `${key}: hash and lease`)
        const [hash, lease] = store.keysOf(key)
        expect(written).to.include.members([hash, lease])
        if (!key.startsWith('}') && !key.startsWith('\\')) expect(hash).to.equal(`${p}{${key}}`)
        expect(keySlot(lease), key).to.equal(keySlot(hash))
        await store.complete(key, r.owner)
      }
      // Every key has its own Redis keys, the escaped ones included.
      const all = keys.flatMap((key) => store.keysOf(key))
      expect(new Set(all).size).to.equal(all.length)
      expect(store.keysOf('}x')[0]).to.not.equal(store.keysOf('\\}x')[0])
      // The slot function matches Redis Cluster's own (cluster-spec examples).
      expect(keySlot('foo')).to.equal(12182)
      expect(keySlot('{user1000}.following')).to.equal(keySlot('{user1000}.followers'))
      expect(keySlot('foo{}{bar}')).to.equal(keySlot('foo{}{bar}'))
      expect(keySlot('foo{{bar}}zap')).to.equal(keySlot('{bar'))
    })

    it('an expired owner cannot complete or release over the new owner, in Redis too', async () => {
      const store = new RedisStore({ client, prefix: `${prefix}takeover:`, leaseMs: 150 })
      const [hash, lease] = store.keysOf('k')
      const old = await claimed(store, 'k')
      await sleep(250)
      expect(await client.exists(lease)).to.equal(0, 'the lease key expired on its own')
      const taker = await claimed(store, 'k')
      expect(taker.attempt).to.equal(2, 'the attempt counter outlives the lease')
      expect(await store.complete('k', old.owner)).to.equal(false)
      expect(await store.release('k', old.owner)).to.equal(false)
      expect(await store.extend('k', old.owner)).to.equal(false)
      expect(await client.hget(hash, 'o')).to.equal(taker.owner)
      expect(await client.hexists(hash, 'd')).to.equal(0)
      expect(await client.get(lease)).to.equal(taker.owner)
      expect(await store.claim('k')).to.deep.equal({ status: 'busy' })
    })

    it('every key it writes expires: lease after leaseMs, the hash after retentionMs', async () => {
      const store = new RedisStore({ client, prefix: `${prefix}ttl:`, leaseMs: 30_000, retentionMs: 600_000 })
      const [hash, lease] = store.keysOf('k')
      const r = await claimed(store, 'k')
      expect(await client.pttl(lease)).to.be.within(29_000, 30_000)
      expect(await client.pttl(hash)).to.be.within(599_000, 600_000)
      await store.release('k', r.owner)
      expect(await client.exists(lease)).to.equal(0)
      expect(await client.hget(hash, 'a')).to.equal('1')
      expect(await client.pttl(hash)).to.be.within(599_000, 600_000)
      const r2 = await claimed(store, 'k')
      await store.complete('k', r2.owner)
      expect(await client.exists(lease)).to.equal(0)
      expect(await client.hgetall(hash)).to.deep.equal({ a: '2', d: '1' })
      expect(await client.pttl(hash)).to.be.within(599_000, 600_000)
      // A note left on a key nobody claimed yet: the hash peek creates for it expires too.
      await store.peek('noted', 'a note')
      expect(await client.pttl(store.keysOf('noted')[0])).to.be.within(599_000, 600_000)
    })

    it('release and extend keep the attempt counter keepMs from now, not from the claim', async () => {
      const store = new RedisStore({ client, prefix: `${prefix}renew:`, leaseMs: 1000, retentionMs: 10_000 })
      const [hash, lease] = store.keysOf('k')
      const r = await claimed(store, 'k')
      await sleep(600)
      expect(await store.release('k', r.owner)).to.equal(true)
      expect(await client.pttl(hash)).to.be.within(9_700, 10_000)
      const r2 = await claimed(store, 'k')
      await sleep(600)
      expect(await store.extend('k', r2.owner)).to.equal(true)
      expect(await client.pttl(hash)).to.be.within(9_700, 10_000)
      expect(await client.pttl(lease)).to.be.within(700, 1_000)
    })

    const ledgerRecord = (key: string, deadline: number): UnsettledRecord => ({
      key, appId: '20110698', outerTradeNo: key.slice(key.lastIndexOf(':') + 1), totalAmount: '1.00', totalFen: 100,
      buyerOpenId: 'b', tradeNo: null, reason: 'AMBIGUOUS', since: 1e11, deadline,
    })

    it('keeps the ledger in two keys of one hash slot under its prefix; a resolve removes the record from both', async () => {
      const p = `${prefix}ledger-layout:`
      const store = new RedisStore({ client, prefix: p })
      const [due, records] = store.unsettledKeys
      expect([due, records]).to.deep.equal([`${p}{unsettled}:due`, `${p}{unsettled}:records`])
      expect(keySlot(due)).to.equal(keySlot(records))
      const record = ledgerRecord('20110698:paid:LL1', 9e12)
      await store.watchUnsettled(record)
      expect(await client.zscore(due, record.key)).to.equal('9000000000000')
      const { deadline: _deadline, ...stored } = record
      expect(JSON.parse((await client.hget(records, record.key))!)).to.deep.equal(stored)
      await store.resolveUnsettled(record.key)
      expect(await client.zscore(due, record.key)).to.equal(null)
      expect(await client.hexists(records, record.key)).to.equal(0, 'no record left behind in the hash')
    })

    it("a watched key's hash lasts keepMs past the record's deadline, and a later mark or note never shortens it", async () => {
      const store = new RedisStore({ client, prefix: `${prefix}mark:`, leaseMs: 1000, retentionMs: 60_000 })
      const key = '20110698:paid:M1'
      const [hash] = store.keysOf(key)
      await store.watchUnsettled(ledgerRecord(key, Date.now() + 600_000))
      expect(await client.pttl(hash)).to.be.within(655_000, 660_000)
      // The record again with a deadline already past: on its own that mark would last keepMs.
      await store.watchUnsettled(ledgerRecord(key, Date.now() - 1000))
      expect(await client.pttl(hash)).to.be.within(650_000, 660_000)
      expect((await store.peek(key, 'a note')).watched).to.equal(true)
      expect(await client.pttl(hash)).to.be.within(650_000, 660_000)
      await store.resolveUnsettled(key)
    })

    packageStoreAnswers('RedisStore', () => new RedisStore({ client, prefix: `${prefix}answers:` }), (label) => label)

    it('gives back a claim whose reply was lost after Redis ran it, so the next claim is not kept waiting a lease', async () => {
      // EVALSHA reaches Redis and runs, but the caller sees a timeout (as with commandTimeout on a stalled Redis).
      const lost = {
        evalsha: (...args: Parameters<Redis['evalsha']>) => {
          void client.evalsha(...args).catch(() => undefined)
          return Promise.reject(new Error('Command timed out'))
        },
        eval: (...args: Parameters<Redis['eval']>) => client.eval(...args),
      }
      const p = `${prefix}lost-reply:`
      const store = new RedisStore({ client, prefix: p })
      // Redis has the claim script cached, so the lost EVALSHA really runs it.
      await store.claim('warm-up')
      const failure = await new RedisStore({ client: lost, prefix: p, leaseMs: 60_000 }).claim('k').then(() => null, (err: Error) => err)
      expect(failure?.message).to.match(/Command timed out/)
      expect(await store.claim('k')).to.deep.include({ status: 'claimed', attempt: 2 })
    })

    it('refuses an empty or non-string key in every operation, before any command', async () => {
      const store = new RedisStore({ client: { evalsha: async () => { throw new Error('sent') }, eval: async () => { throw new Error('sent') } }, prefix: `${prefix}badkey:` })
      for (const key of ['', 42, undefined]) {
        const calls = [() => store.claim(key as never), () => store.peek(key as never), () => store.complete(key as never, 'o'),
          () => store.release(key as never, 'o'), () => store.extend(key as never, 'o')]
        for (const call of calls) {
          let error: unknown
          try { await call() } catch (err) { error = err }
          expect(error, String(key)).to.be.instanceOf(ParamError).with.property('field', 'key')
        }
      }
    })

    it('claim is one round trip: a single EVALSHA once the script is cached; complete one more', async () => {
      const spy = spyOnCommands(client)
      const store = new RedisStore({ client: spy.client, prefix: `${prefix}rtt:` })
      const warm = await claimed(store, 'warm-up')
      await store.complete('warm-up', warm.owner)
      spy.sent.length = 0
      const { owner } = await claimed(store, 'k')
      expect(spy.names()).to.deep.equal(['evalsha'])
      await store.complete('k', owner, 'memo')
      expect(spy.names()).to.deep.equal(['evalsha', 'evalsha'])
    })

    roundTrips('ioredis', () => client)

    it('without enableAutoPipelining, the commands sent in one event-loop turn leave in one socket write, and the socket is uncorked after it', async () => {
      const spy = spyOnCommands(client)
      const store = new RedisStore({ client: spy.client, prefix: `${prefix}turn:` })
      const run = settlingOn(store, 'TW')
      await run(-1)
      const stream = (client as unknown as { stream: CountedSocket }).stream
      const writes = countSocketWrites([stream])
      try {
        spy.sent.length = 0
        const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => run(i)))
        expect(fresh.every((o) => o.answer === 'success' && o.how === 'settled')).to.equal(true)
        expect(spy.names()).to.deep.equal(Array(40).fill('evalsha'))
        // 20 claims sent in one turn, then 20 completes as their replies arrive (a few reads).
        expect(writes.count(), 'the 40 commands went out in a few socket writes, not one each').to.be.at.most(10)
        const dups = await Promise.all(Array.from({ length: 20 }, (_, i) => run(i)))
        expect(dups.every((o) => o.answer === 'success' && o.how === 'duplicate')).to.equal(true)
        // The shop's own command on the same client, in a turn the store corked, still goes out.
        const claim = store.claim('after-cork')
        expect(await client.ping()).to.equal('PONG')
        expect((await claim).status).to.equal('claimed')
        await new Promise((resolve) => setImmediate(resolve))
        expect(stream.writableCorked, 'uncorked once the turn ended').to.equal(0)
      } finally {
        writes.restore()
      }
    })

    it('enableAutoPipelining on one server: the same commands and answers; concurrent settlements share socket writes', async () => {
      const piped = new Redis(REDIS_URL, { lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: 1 })
      await piped.connect()
      try {
        const spy = spyOnCommands(piped)
        const store = new RedisStore({ client: spy.client, prefix: `${prefix}autopipe:` })
        const run = settlingOn(store, 'AP')
        await run(-1)
        const stream = (piped as unknown as { stream: { write: (...args: unknown[]) => boolean } }).stream
        const write = stream.write
        let writes = 0
        stream.write = (...args: unknown[]) => { writes++; return write.apply(stream, args) }
        spy.sent.length = 0
        const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => run(i)))
        expect(fresh.every((o) => o.answer === 'success' && o.how === 'settled')).to.equal(true)
        expect(spy.names()).to.deep.equal(Array(40).fill('evalsha'))
        expect(writes, 'the 40 commands went out in a few socket writes').to.be.below(40)
        spy.sent.length = 0
        const dups = await Promise.all(Array.from({ length: 20 }, (_, i) => run(i)))
        expect(dups.every((o) => o.answer === 'success' && o.how === 'duplicate')).to.equal(true)
        expect(spy.names()).to.deep.equal(Array(20).fill('evalsha'))
        stream.write = write
      } finally {
        piped.disconnect()
      }
    })

    it('refuses an ioredis Cluster with enableAutoPipelining (its scripts would share pipelines across slots)', () => {
      const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { enableAutoPipelining: true, lazyConnect: true })
      expect(() => new RedisStore({ client: cluster, prefix })).to.throw(ConfigError, /enableAutoPipelining/)
      const plain = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
      expect(() => new RedisStore({ client: plain, prefix })).to.not.throw()
    })

    it('falls back to EVAL when Redis does not have the script (NOSCRIPT), then uses EVALSHA', async () => {
      const spy = spyOnCommands(client)
      const adapter = redisAdapter(spy.client, 'test')
      const script = new LuaScript(`-- ${uniquePrefix('noscript')}\nreturn ARGV[1] .. KEYS[1]`)
      expect(await adapter.evalScript(script, [`${prefix}x`], ['v'])).to.equal(`v${prefix}x`)
      expect(spy.names()).to.deep.equal(['evalsha', 'eval'])
      spy.sent.length = 0
      expect(await adapter.evalScript(script, [`${prefix}x`], ['w'])).to.equal(`w${prefix}x`)
      expect(spy.names()).to.deep.equal(['evalsha'])
    })

    it('rejects quickly when Redis is unreachable (enableOfflineQueue: false), instead of hanging', async () => {
      const port = await unusedPort()
      const down = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 1000 })
      down.on('error', () => {})
      try {
        const store = new RedisStore({ client: down, prefix: `${prefix}down:` })
        const started = Date.now()
        let error: unknown
        try {
          await store.claim('k')
        } catch (err) {
          error = err
        }
        expect(error).to.be.instanceOf(Error)
        expect(Date.now() - started).to.be.below(1000)
        error = undefined
        try {
          await store.complete('k', 'owner')
        } catch (err) {
          error = err
        }
        expect(error).to.be.instanceOf(Error)
      } finally {
        down.disconnect()
      }
    })

    /**
     * The ioredis client, with every EVALSHA/EVAL reply passed through `reply` (a client library
     * that decodes differently), integers inside an array reply too.
     */
    function decoding(reply: (raw: unknown) => unknown) {
      const decode = (raw: unknown) => (Array.isArray(raw) ? raw.map((x) => (typeof x === 'number' ? reply(x) : x)) : reply(raw))
      return {
        evalsha: (...args: Parameters<Redis['evalsha']>) => client.evalsha(...args).then(decode),
        eval: (...args: Parameters<Redis['eval']>) => client.eval(...args).then(decode),
      }
    }

    it('reads integer replies a client decodes as strings or bigints', async () => {
      for (const [what, reply] of [['strings', String], ['bigints', (raw: unknown) => BigInt(raw as number)]] as const) {
        const store = new RedisStore({ client: decoding(reply), prefix: `${prefix}decoded-${what}:` })
        const r = await claimed(store, 'k')
        expect(r.attempt, what).to.equal(1)
        expect(await store.claim('k'), what).to.deep.equal({ status: 'busy' })
        expect(await store.complete('k', r.owner), what).to.equal(true)
        expect(await store.claim('k'), what).to.include({ status: 'done' })
      }
    })

    it('rejects a reply that is not an integer instead of guessing what it means', async () => {
      // '1': a bare status where a script answers a table (it reads as attempt 1 if taken apart);
      // [null]: a status that is no number (Number(null) is 0, which would read as done).
      for (const junk of ['OK', '1', null, 1.5, [], ['OK'], [1.5], [null], [true]]) {
        const store = new RedisStore({ client: { evalsha: async () => junk, eval: async () => junk }, prefix: `${prefix}junk:` })
        let error: unknown
        try { await store.claim('k') } catch (err) { error = err }
        expect(error, JSON.stringify(junk)).to.be.instanceOf(GuanaitongError).with.property('message').that.matches(/unexpected reply from Redis/)
        expect(error, JSON.stringify(junk)).to.have.property('code', 'STORE_FAILED')
      }
    })

    it('rejects a ledger reply that is not json, deadline pairs instead of guessing what it means', async () => {
      for (const junk of [7, '12', null, ['{}']]) {
        const store = new RedisStore({ client: { evalsha: async () => junk, eval: async () => junk }, prefix: `${prefix}junk-ledger:` })
        for (const call of [() => store.listUnsettled(), () => store.takeDueUnsettled(1e11, 10, 1000)]) {
          let error: unknown
          try { await call() } catch (err) { error = err }
          expect(error, JSON.stringify(junk)).to.be.instanceOf(Error).with.property('message').that.matches(/unexpected reply from Redis/)
        }
      }
    })

    it('every unexpected reply, a key script\'s or the ledger\'s, is STORE_FAILED with its one status (503)', async () => {
      const calls: [string, (store: RedisStore) => Promise<unknown>][] = [
        ['claim', (store) => store.claim('k')],
        ['listUnsettled', (store) => store.listUnsettled()],
      ]
      for (const [what, call] of calls) {
        const odd = async () => ['odd']
        const store = new RedisStore({ client: { evalsha: odd, eval: odd } as never, prefix: `${prefix}junk-${what}:` })
        const error = await call(store).then(() => expect.fail(`${what} resolved`), (err: unknown) => err)
        expect(error, what).to.be.instanceOf(GuanaitongError)
        expect([(error as GuanaitongError).code, (error as GuanaitongError).status], what).to.deep.equal(['STORE_FAILED', 503])
        expect((error as Error).message, what).to.match(/^\[express-guanaitong\] RedisStore: unexpected reply from Redis/)
      }
    })

    it('waitReplicas: when fewer replicas acknowledge in time, complete rejects STORE_NOT_REPLICATED; the marker is kept', async () => {
      const replicas = await moreReplicasThanThereAre()
      await expectWaitShortfall(new RedisStore({ client, prefix: `${prefix}short:`, waitReplicas: replicas, waitTimeoutMs: 150 }), replicas)
    })

    it('reports other Redis errors as a GuanaitongError REDIS_FAILED, the original as cause and in the message', async () => {
      const failure = new Error('READONLY You can\'t write against a read only replica.')
      const fake = { evalsha: async () => { throw failure }, eval: async () => 1 }
      const store = new RedisStore({ client: fake })
      let error: unknown
      try {
        await store.claim('k')
      } catch (err) {
        error = err
      }
      expect(error).to.be.instanceOf(GuanaitongError).with.property('code', 'REDIS_FAILED')
      expect((error as Error).cause).to.equal(failure)
      expect((error as Error).message).to.equal("[express-guanaitong] RedisStore: Redis command failed: READONLY You can't write against a read only replica.")
    })
  })

  describe('RedisStore with node-redis', () => {
    let client: ReturnType<typeof createClient>
    before(async () => {
      client = createClient({ url: REDIS_URL, disableOfflineQueue: true })
      client.on('error', () => {})
      await client.connect()
    })
    after(() => client?.destroy())

    storeConformance('RedisStore (node-redis)', (opts) => new RedisStore({ client, prefix: `${prefix}nr:`, ...opts }))

    it('is detected as node-redis', () => {
      expect(redisAdapter(client, 'test').kind).to.equal('node-redis')
    })

    it('claim is one round trip with node-redis too', async () => {
      const spy = spyOnCommands(client)
      const store = new RedisStore({ client: spy.client, prefix: `${prefix}nr-rtt:` })
      await store.claim('warm-up')
      spy.sent.length = 0
      await store.claim('k')
      expect(spy.names()).to.deep.equal(['evalsha'])
    })

    it('falls back to EVAL on NOSCRIPT with node-redis too', async () => {
      const spy = spyOnCommands(client)
      const adapter = redisAdapter(spy.client, 'test')
      const script = new LuaScript(`-- ${uniquePrefix('noscript')}\nreturn ARGV[1]`)
      expect(await adapter.evalScript(script, [`${prefix}x`], ['v'])).to.equal('v')
      expect(spy.names()).to.deep.equal(['evalsha', 'eval'])
    })

    roundTrips('node-redis', () => client)

    it('waitReplicas with node-redis: complete rejects STORE_NOT_REPLICATED when fewer replicas acknowledge', async () => {
      const replicas = await moreReplicasThanThereAre()
      await expectWaitShortfall(new RedisStore({ client, prefix: `${prefix}nr-short:`, waitReplicas: replicas, waitTimeoutMs: 150 }), replicas)
    })

    it('shares state with an ioredis store on the same prefix', async () => {
      const io = new Redis(REDIS_URL, { lazyConnect: true })
      await io.connect()
      try {
        const p = `${prefix}mixed:`
        const a = new RedisStore({ client, prefix: p })
        const b = new RedisStore({ client: io, prefix: p })
        const r = await claimed(a, 'k')
        expect(await b.claim('k')).to.deep.equal({ status: 'busy' })
        expect(await b.complete('k', r.owner)).to.equal(true)
        expect(await a.claim('k')).to.include({ status: 'done' })
      } finally {
        io.disconnect()
      }
    })
  })

  describe('RedisStore options', () => {
    const fake = { evalsha: async () => 1, eval: async () => 1 }

    it('has the documented defaults', () => {
      const s = new RedisStore({ client: fake })
      expect(s.leaseMs).to.equal(60_000)
      expect(s.retentionMs).to.equal(25 * 60 * 60 * 1000)
      expect(s.prefix).to.equal('gat:')
      expect(s.keysOf('app:paid:1')).to.deep.equal(['gat:{app:paid:1}', 'gat:{app:paid:1}:lease'])
    })

    it('requires a client and says which', () => {
      expect(() => new RedisStore({} as never)).to.throw(ConfigError, /client is required.*ioredis.*node-redis/)
      expect(() => new RedisStore({ client: { get: () => 1 } } as never)).to.throw(ConfigError, /neither an ioredis nor a node-redis/)
      expect(() => new RedisStore(undefined as never)).to.throw(ConfigError, /options are required/)
      expect(() => new RedisStore(null as never)).to.throw(ConfigError,
        /^\[express-guanaitong\] RedisStore: options are required as an object, e\.g\. \{ client: new Redis\(url\) \}/)
    })

    it('waitReplicas: 0 by default (no WAIT); waitTimeoutMs 100 once waitReplicas is set', () => {
      const plain = new RedisStore({ client: fake })
      expect(plain.waitReplicas).to.equal(0)
      const waiting = new RedisStore({ client: fake, waitReplicas: 1 })
      expect(waiting.waitReplicas).to.equal(1)
      expect(waiting.waitTimeoutMs).to.equal(100)
      expect(new RedisStore({ client: fake, waitReplicas: 0 }).waitReplicas).to.equal(0)
    })

    it('rejects a bad waitReplicas or waitTimeoutMs, and a waitTimeoutMs without waitReplicas', () => {
      for (const bad of [-1, 1.5, '1', NaN, null]) {
        expect(() => new RedisStore({ client: fake, waitReplicas: bad as never }), String(bad)).to.throw(ConfigError, /waitReplicas must be a whole number, 0 or more/)
      }
      for (const bad of [0, -5, 2.5, '100']) {
        expect(() => new RedisStore({ client: fake, waitReplicas: 1, waitTimeoutMs: bad as never }), String(bad)).to.throw(ConfigError, /waitTimeoutMs must be a positive whole number/)
      }
      expect(() => new RedisStore({ client: fake, waitTimeoutMs: 100 })).to.throw(ConfigError, /waitTimeoutMs needs waitReplicas/)
    })

    it('waits for replicas only after a complete that marked the key done', async () => {
      const calls: string[] = []
      const pipeline = {
        exists(key: string) { calls.push(`exists ${key}`); return pipeline },
        wait(n: string, ms: string) { calls.push(`wait ${n} ${ms}`); return pipeline },
        exec: async () => [[null, 1], [null, 2]],
      }
      let completeReply = 1
      const client = { evalsha: async () => completeReply, eval: async () => completeReply, pipeline: () => pipeline }
      const store = new RedisStore({ client, waitReplicas: 2, waitTimeoutMs: 50 })
      expect(await store.complete('k', 'owner')).to.equal(true)
      expect(calls).to.deep.equal(['exists gat:{k}', 'wait 2 50'])
      completeReply = 0
      expect(await store.complete('k', 'someone-else')).to.equal(false)
      expect(calls, 'no WAIT after a complete that did nothing').to.have.length(2)
    })

    it('rejects bad leaseMs, retentionMs and prefix', () => {
      expect(() => new RedisStore({ client: fake, leaseMs: 0 })).to.throw(ConfigError, /leaseMs must be a positive whole number/)
      expect(() => new RedisStore({ client: fake, retentionMs: -1 })).to.throw(ConfigError, /retentionMs/)
      expect(() => new RedisStore({ client: fake, prefix: 5 as never })).to.throw(ConfigError, /prefix must be a string/)
      expect(() => new RedisStore({ client: fake, prefix: 'gat:{x}:' })).to.throw(ConfigError, /without \{ or \}/)
    })
  })
})
