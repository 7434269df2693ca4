import assert from 'node:assert/strict'
import type { ClaimResult, CrossCheck, NotifyStore } from '../kernel/types'
import { crossCheckConformance, type SettleProbe } from './crosscheck-conformance'
import { ledgerConformance } from './ledger-conformance'
import { runner, skipWithout } from './runner'

/** Options a store under test is made with. */
export interface ConformanceStoreOptions {
  leaseMs: number
  retentionMs: number
}

/** Options of `storeConformance()`. */
export interface ConformanceOptions {
  /** Runs after each test with the store it used: close connections, delete keys. */
  cleanup?: (store: NotifyStore) => void | Promise<void>
  /** How the suite waits for leases and done-markers to expire. Default a real `setTimeout`. */
  sleep?: (ms: number) => Promise<void>
  /** The short lease used by the expiry tests, ms. Default 200; raise it for a slow store. */
  shortLeaseMs?: number
  /** The short retention used by the done-marker expiry test, ms. Default 300. */
  shortRetentionMs?: number
  /** Per-test timeout for runners that support one (mocha), ms. Default 10 000. */
  timeoutMs?: number
}

const LONG_LEASE_MS = 10_000
const LONG_RETENTION_MS = 10 * 60_000

/**
 * Registers a test suite that checks a `NotifyStore` keeps the contract the notification
 * router relies on: atomic claims, owner-only complete/release/extend, lease expiry and takeover,
 * done-marker retention, attempt counting; and, for a store that keeps the unsettled ledger,
 * its order, replacement and atomic take (skipped for a store without it; these expect no
 * records with deadlines before 1974 but their own). Call it at the top level of a test file:
 *
 * ```ts
 * import { storeConformance } from 'express-guanaitong/testing'
 * storeConformance('MyStore', ({ leaseMs, retentionMs }) => new MyStore({ leaseMs, retentionMs }), {
 *   cleanup: (store) => (store as MyStore).close(),
 * })
 * ```
 *
 * `makeStore` is called once per test with the lease and retention that test needs (some are
 * short, a few hundred ms, and the suite sleeps for real to let them expire). Every test uses
 * keys of its own, unique to the run, so a shared backend (one Redis database) is fine.
 */
export function storeConformance(
  name: string,
  makeStore: (opts: ConformanceStoreOptions) => NotifyStore | Promise<NotifyStore>,
  options: ConformanceOptions = {},
): void {
  const { describe, it, afterEach } = runner()
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const shortLease = options.shortLeaseMs ?? 200
  const shortRetention = options.shortRetentionMs ?? 300
  const timeoutMs = options.timeoutMs ?? 10_000
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
  let counter = 0
  /** A key no other test (or run) uses. */
  const uniqueKey = (label = 'k') => `conformance:${run}:${++counter}:${label}`

  const made: NotifyStore[] = []
  const store = async (opts: Partial<ConformanceStoreOptions> = {}) => {
    const s = await makeStore({ leaseMs: opts.leaseMs ?? LONG_LEASE_MS, retentionMs: opts.retentionMs ?? LONG_RETENTION_MS })
    made.push(s)
    return s
  }

  const test = (title: string, body: () => Promise<void>) =>
    it(title, function () {
      this.timeout?.(timeoutMs)
      return body()
    })

  /** A short-lease store with the optional extend, or the test is skipped. */
  const extendTest = (title: string, body: (s: NotifyStore & Required<Pick<NotifyStore, 'extend'>>) => Promise<void>) =>
    it(title, async function () {
      this.timeout?.(timeoutMs)
      const s = await store({ leaseMs: shortLease })
      if (typeof s.extend !== 'function') return skipWithout(this, 'extend()')
      await body(s as NotifyStore & Required<Pick<NotifyStore, 'extend'>>)
    })

  describe(`NotifyStore conformance: ${name}`, () => {
    afterEach(async () => {
      const stores = made.splice(0)
      if (options.cleanup) for (const s of stores) await options.cleanup(s)
    })

    test('exposes leaseMs and retentionMs as given', async () => {
      const s = await store({ leaseMs: 1234, retentionMs: 56789 })
      assert.equal(s.leaseMs, 1234)
      assert.equal(s.retentionMs, 56789)
    })

    test('claims a free key: claimed, with an owner token and attempt 1', async () => {
      const s = await store()
      const r = assertClaimed(await s.claim(uniqueKey()))
      assert.equal(r.attempt, 1)
    })

    test('gives every claim a different owner token', async () => {
      const s = await store()
      const owners = new Set<string>()
      for (let i = 0; i < 20; i++) {
        owners.add(assertClaimed(await s.claim(uniqueKey())).owner)
      }
      assert.equal(owners.size, 20)
    })

    test('answers busy while the key is held', async () => {
      const s = await store()
      const key = uniqueKey()
      assertClaimed(await s.claim(key))
      assertStatus(await s.claim(key), 'busy')
      assertStatus(await s.claim(key), 'busy')
    })

    test('complete by the owner returns true, then the key is done', async () => {
      const s = await store()
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      assert.equal(await s.complete(key, r.owner), true)
      assertStatus(await s.claim(key), 'done')
      assertStatus(await s.claim(key), 'done')
    })

    test('a completed key cannot be released, completed or extended again, and stays done', async () => {
      const s = await store()
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      assert.equal(await s.complete(key, r.owner), true)
      assert.equal(await s.release(key, r.owner), false, 'release after complete must not undo the done-marker')
      assert.equal(await s.complete(key, r.owner), false)
      if (s.extend) assert.equal(await s.extend(key, r.owner), false)
      assertStatus(await s.claim(key), 'done')
    })

    test('release by the owner returns true, then the next claim gets attempt 2', async () => {
      const s = await store()
      const key = uniqueKey()
      const first = assertClaimed(await s.claim(key))
      assert.equal(await s.release(key, first.owner), true)
      const second = assertClaimed(await s.claim(key))
      assert.equal(second.attempt, 2)
      assert.notEqual(second.owner, first.owner)
      assertStatus(await s.claim(key), 'busy')
    })

    test('counts attempts across several releases', async () => {
      const s = await store()
      const key = uniqueKey()
      for (let attempt = 1; attempt <= 4; attempt++) {
        const r = assertClaimed(await s.claim(key))
        assert.equal(r.attempt, attempt)
        assert.equal(await s.release(key, r.owner), true)
      }
      const last = assertClaimed(await s.claim(key))
      assert.equal(last.attempt, 5)
      assert.equal(await s.complete(key, last.owner), true)
      assertStatus(await s.claim(key), 'done')
    })

    test('a released owner can no longer complete or release', async () => {
      const s = await store()
      const key = uniqueKey()
      const first = assertClaimed(await s.claim(key))
      assert.equal(await s.release(key, first.owner), true)
      assert.equal(await s.release(key, first.owner), false)
      assert.equal(await s.complete(key, first.owner), false)
      const second = assertClaimed(await s.claim(key))
      assert.equal(await s.complete(key, first.owner), false)
      assert.equal(await s.complete(key, second.owner), true)
    })

    test('complete, release and extend with a wrong owner return false and change nothing', async () => {
      const s = await store()
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      for (const wrong of ['not-the-owner', '', `${r.owner}x`, r.owner.slice(1)]) {
        assert.equal(await s.complete(key, wrong), false, `complete with owner ${JSON.stringify(wrong)}`)
        assert.equal(await s.release(key, wrong), false, `release with owner ${JSON.stringify(wrong)}`)
        if (s.extend) assert.equal(await s.extend(key, wrong), false, `extend with owner ${JSON.stringify(wrong)}`)
      }
      assertStatus(await s.claim(key), 'busy')
      assert.equal(await s.complete(key, r.owner), true)
      assertStatus(await s.claim(key), 'done')
    })

    test('complete, release and extend of a key never claimed return false and create nothing', async () => {
      const s = await store()
      const key = uniqueKey()
      assert.equal(await s.complete(key, 'nobody'), false)
      assert.equal(await s.release(key, 'nobody'), false)
      if (s.extend) assert.equal(await s.extend(key, 'nobody'), false)
      const r = assertClaimed(await s.claim(key))
      assert.equal(r.attempt, 1)
    })

    test('an expired lease lets a new claim take over; the old owner can then neither complete nor release', async () => {
      const s = await store({ leaseMs: shortLease })
      const key = uniqueKey()
      const old = assertClaimed(await s.claim(key))
      assertStatus(await s.claim(key), 'busy')
      await sleep(shortLease + 100)
      const taker = assertClaimed(await s.claim(key))
      assert.notEqual(taker.owner, old.owner)
      assert.ok(taker.attempt >= 1)
      assert.equal(await s.complete(key, old.owner), false, 'the old owner must not complete over the takeover')
      assert.equal(await s.release(key, old.owner), false, 'the old owner must not release the takeover')
      if (s.extend) assert.equal(await s.extend(key, old.owner), false, 'the old owner must not extend the takeover')
      assertStatus(await s.claim(key), 'busy', 'the takeover must still hold the key')
      assert.equal(await s.complete(key, taker.owner), true)
      assertStatus(await s.claim(key), 'done')
    })

    test('a takeover after an expired lease can itself be released and claimed again', async () => {
      const s = await store({ leaseMs: shortLease })
      const key = uniqueKey()
      const old = assertClaimed(await s.claim(key))
      await sleep(shortLease + 100)
      const taker = assertClaimed(await s.claim(key))
      assert.equal(await s.release(key, old.owner), false)
      assert.equal(await s.release(key, taker.owner), true)
      const third = assertClaimed(await s.claim(key))
      assert.ok(third.attempt > taker.attempt, `attempt ${third.attempt} after ${taker.attempt}`)
    })

    extendTest('extend by the owner keeps the claim alive past its original lease', async (s) => {
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      await sleep(shortLease / 2)
      assert.equal(await s.extend(key, r.owner), true)
      await sleep(shortLease / 2 + 50)
      // Past the original lease, within the renewed one.
      assertStatus(await s.claim(key), 'busy')
      assert.equal(await s.extend(key, r.owner), true)
      await sleep(shortLease / 2 + 50)
      assertStatus(await s.claim(key), 'busy')
      assert.equal(await s.complete(key, r.owner), true)
      assertStatus(await s.claim(key), 'done')
    })

    extendTest('without another extend, an extended claim expires one lease after the extend', async (s) => {
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      assert.equal(await s.extend(key, r.owner), true)
      await sleep(shortLease + 100)
      assertClaimed(await s.claim(key))
    })

    test('a done-marker expires after retentionMs and the key can be claimed again', async () => {
      const s = await store({ retentionMs: shortRetention })
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      assert.equal(await s.complete(key, r.owner), true)
      assertStatus(await s.claim(key), 'done')
      await sleep(shortRetention + 150)
      const again = assertClaimed(await s.claim(key))
      assert.notEqual(again.owner, r.owner)
    })

    it('peek: a key whose lease ran out is open, as a claim would find it; a note left on a free key lasts past leaseMs', async function () {
      this.timeout?.(timeoutMs)
      const s = await store({ leaseMs: shortLease })
      if (typeof (s as Partial<CrossCheck>).peek !== 'function') return skipWithout(this, 'peek()')
      const peek = (key: string, note?: string) => (s as NotifyStore & CrossCheck).peek(key, note)
      const lapsed = uniqueKey('lapsed')
      const noted = uniqueKey('noted')
      assertClaimed(await s.claim(lapsed))
      assert.equal((await peek(noted, 'a note')).status, 'open')
      await sleep(shortLease + 100)
      assert.equal((await peek(lapsed)).status, 'open', 'a lease that ran out holds the key no more')
      assert.equal(assertClaimed(await s.claim(noted)).note, 'a note', 'a note is kept retentionMs, not leaseMs')
    })

    test('50 concurrent claims of one key: exactly one is claimed, the others busy', async () => {
      const s = await store()
      const key = uniqueKey()
      const results = await Promise.all(Array.from({ length: 50 }, () => s.claim(key)))
      const claimed = results.filter((r) => r.status === 'claimed')
      assert.equal(claimed.length, 1, `claimed ${claimed.length} times`)
      assert.equal(results.filter((r) => r.status === 'busy').length, 49)
    })

    test('50 concurrent claims right after a release: exactly one is claimed', async () => {
      const s = await store()
      const key = uniqueKey()
      const r = assertClaimed(await s.claim(key))
      assert.equal(await s.release(key, r.owner), true)
      const results = await Promise.all(Array.from({ length: 50 }, () => s.claim(key)))
      const claimed = results.filter((x): x is Extract<ClaimResult, { status: 'claimed' }> => x.status === 'claimed')
      assert.equal(claimed.length, 1, `claimed ${claimed.length} times`)
      assert.equal(claimed[0].attempt, 2)
    })

    test('distinct keys are independent', async () => {
      const s = await store()
      const a = uniqueKey('a')
      const b = uniqueKey('b')
      const c = uniqueKey('c')
      const ra = assertClaimed(await s.claim(a))
      const rb = assertClaimed(await s.claim(b))
      assert.equal(await s.complete(a, ra.owner), true)
      assertStatus(await s.claim(a), 'done')
      assertStatus(await s.claim(b), 'busy')
      assert.equal(await s.complete(b, ra.owner), false, "one key's owner must not complete another key")
      assert.equal(await s.release(b, rb.owner), true)
      assertStatus(await s.claim(a), 'done')
      assert.equal(assertClaimed(await s.claim(b)).attempt, 2)
      assert.equal(assertClaimed(await s.claim(c)).attempt, 1)
      // A key that is a prefix or an extension of another is another key.
      assert.equal(assertClaimed(await s.claim(`${a}:x`)).attempt, 1)
      assert.equal(assertClaimed(await s.claim(a.slice(0, -1))).attempt, 1)
    })

    test('keys with colons, braces, spaces, unicode and long keys work', async () => {
      const s = await store()
      const base = uniqueKey('odd')
      const odd = [
        `${base}:a:b:c`,
        `${base}{braces}`,
        `${base}}{`,
        `{${base}}`,
        `${base}{`,
        `${base}}`,
        `${base} with spaces\tand\nnewlines`,
        `${base}:中文订单号`,
        `${base}:💳:é`,
        `${base}%2F/\\'"*?[]`,
        `${base}:${'x'.repeat(1000)}`,
      ]
      const owners = new Map<string, string>()
      for (const key of odd) owners.set(key, assertClaimed(await s.claim(key), key).owner)
      for (const key of odd) assertStatus(await s.claim(key), 'busy', key)
      for (const key of odd) assert.equal(await s.complete(key, owners.get(key)!), true, key)
      for (const key of odd) assertStatus(await s.claim(key), 'done', key)
      assert.equal(assertClaimed(await s.claim(`${base}{brace`)).attempt, 1)
    })

    ledgerConformance(it, () => store(), { timeoutMs, run })
    crossCheckConformance(it, async () => {
      const s = await store()
      return { store: s, probe: claimProbe(s) }
    }, { timeoutMs, run })
  })
}

/** Settles through claim and complete, for the cross-check cases. */
function claimProbe(s: NotifyStore): SettleProbe {
  return {
    async settleOnce(key, memo) {
      const r = await s.claim(key)
      if (r.status === 'busy') return { status: 'busy' }
      if (r.status === 'done') return { status: 'done', watched: r.watched, memo: r.memo }
      assert.equal(await s.complete(key, r.owner, memo), true)
      return { status: 'settled', watched: r.watched, note: r.note }
    },
    async hold(key) {
      const r = assertClaimed(await s.claim(key))
      return {
        attempt: r.attempt,
        async finish(complete = true) {
          assert.equal(await (complete ? s.complete(key, r.owner) : s.release(key, r.owner)), true)
          return { watched: r.watched, note: r.note }
        },
      }
    },
  }
}

/** The status of a claim result; a store may add fields (watched, memo) the core reads. */
function assertStatus(r: ClaimResult, status: ClaimResult['status'], label?: string): void {
  assert.equal(r?.status, status, `${label ? `${label}: ` : ''}expected ${status}, got ${JSON.stringify(r)}`)
}

function assertClaimed(r: ClaimResult, label?: string): Extract<ClaimResult, { status: 'claimed' }> {
  assert.equal(r.status, 'claimed', `${label ? `${label}: ` : ''}expected claimed, got ${JSON.stringify(r)}`)
  const claimed = r as Extract<ClaimResult, { status: 'claimed' }>
  assert.equal(typeof claimed.owner, 'string')
  assert.ok(claimed.owner.length > 0, 'owner must be a non-empty string')
  assert.ok(Number.isInteger(claimed.attempt) && claimed.attempt >= 1, `attempt must be a positive integer, got ${claimed.attempt}`)
  return claimed
}
