import assert from 'node:assert/strict'
import { GuanaitongError } from '../kernel/errors'
import type { TransactionalResult, TransactionalStore } from '../kernel/types'
import { runner, skipWithout, type Fn } from './runner'
import { crossCheckConformance, type SettleProbe } from './crosscheck-conformance'
import { ledgerConformance } from './ledger-conformance'

/** What the suite needs from the database behind a transactional store, besides the store. */
export interface TransactionalConformanceOptions<Tx> {
  /** Writes one row for `id` into a table of the shop's, through the transaction. */
  write: (tx: Tx, id: string) => Promise<unknown>
  /** How many committed rows `id` has in that table (read outside any transaction). */
  count: (id: string) => Promise<number>
  /** Kills the transaction's connection on the server side (`pg_terminate_backend`, `KILL`), from another connection. */
  killConnection: (tx: Tx) => Promise<unknown>
  /** Runs after each test with the stores it made. */
  cleanup?: (store: TransactionalStore<Tx>) => void | Promise<void>
  /** Per-test timeout for runners that support one (mocha), ms. Default 20 000. */
  timeoutMs?: number
}

/** A store whose old done-markers can be purged on demand (`PostgresStore`, `MysqlStore`). */
interface Purgeable {
  purge(): Promise<number>
}

/**
 * Registers a test suite that checks a `TransactionalStore` gives exactly-once settlement: the
 * work's writes through `tx` commit with the done-marker or not at all; a duplicate in flight is
 * answered `busy` at once, never blocked behind the first; a killed connection frees the key;
 * attempts are counted across failures; markers are shared by every store on the same table;
 * `status` (when the store has it) tells done, busy and open apart without changing anything; and
 * the unsettled ledger, for a store that keeps one. `purge()` deletes every old marker of the
 * table: give the suite a table no one else uses.
 *
 * ```ts
 * transactionalStoreConformance('PostgresStore', (opts) => new PostgresStore({ pool, ...opts }), {
 *   write: (tx, id) => tx.query('INSERT INTO shop_rows (id) VALUES ($1)', [id]),
 *   count: async (id) => (await pool.query('SELECT count(*)::int AS n FROM shop_rows WHERE id = $1', [id])).rows[0].n,
 *   killConnection: (tx) => pool.query('SELECT pg_terminate_backend($1)', [(tx as any).processID]),
 * })
 * ```
 */
export function transactionalStoreConformance<Tx>(
  name: string,
  makeStore: (opts: { retentionMs: number }) => TransactionalStore<Tx> | Promise<TransactionalStore<Tx>>,
  options: TransactionalConformanceOptions<Tx>,
): void {
  const { describe, it, afterEach } = runner()
  const timeoutMs = options.timeoutMs ?? 20_000
  const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
  let counter = 0
  const uniqueKey = () => `20110698:paid:T${run}${++counter}`

  const made: TransactionalStore<Tx>[] = []
  const store = async (retentionMs = 10 * 60_000) => {
    const s = await makeStore({ retentionMs })
    made.push(s)
    return s
  }
  const test = (title: string, body: (this: ThisParameterType<Fn>) => Promise<void>) =>
    it(title, function () {
      this.timeout?.(timeoutMs)
      return body.call(this)
    })

  /** Work that writes its row and then waits until `open()`: a settlement held in flight. */
  const held = (id: string) => {
    let open!: () => void
    let entered!: (tx: Tx) => void
    const gate = new Promise<void>((resolve) => { open = resolve })
    const inside = new Promise<Tx>((resolve) => { entered = resolve })
    const work = async (tx: Tx) => {
      await options.write(tx, id)
      entered(tx)
      await gate
    }
    return { work, open, inside }
  }

  describe(`TransactionalStore conformance: ${name}`, () => {
    afterEach(async () => {
      const stores = made.splice(0)
      if (options.cleanup) for (const s of stores) await options.cleanup(s)
    })

    test('declares itself transactional', async () => {
      const s = await store()
      assert.equal(s.transactional, true)
      assert.equal(typeof s.settle, 'function')
    })

    test('runs the work once with attempt 1 and commits its writes; a second settle is done without running it', async () => {
      const s = await store()
      const key = uniqueKey()
      const attempts: number[] = []
      const work = async (tx: Tx, attempt: number) => {
        attempts.push(attempt)
        await options.write(tx, key)
      }
      assertStatus(await s.settle(key, work), 'completed')
      assert.equal(await options.count(key), 1)
      assertStatus(await s.settle(key, work), 'done')
      assert.deepEqual(attempts, [1])
      assert.equal(await options.count(key), 1)
    })

    test('a work that throws after writing: rejects with its own error, its writes are gone, the next attempt is 2', async () => {
      const s = await store()
      const key = uniqueKey()
      const boom = handlerFailure('handler failed after its write')
      await assert.rejects(s.settle(key, async (tx) => {
        await options.write(tx, key)
        throw boom
      }), (err) => err === boom)
      assert.equal(await options.count(key), 0, 'the write of a failed work must be rolled back')
      let seen = 0
      assertStatus(await s.settle(key, async (tx, attempt) => {
        seen = attempt
        await options.write(tx, key)
      }), 'completed')
      assert.equal(seen, 2)
      assert.equal(await options.count(key), 1)
    })

    test('counts attempts across several failures', async () => {
      const s = await store()
      const key = uniqueKey()
      const seen: number[] = []
      for (let i = 0; i < 3; i++) {
        await assert.rejects(s.settle(key, async (_tx, attempt) => {
          seen.push(attempt)
          throw handlerFailure('not yet')
        }))
      }
      await s.settle(key, async (_tx, attempt) => { seen.push(attempt) })
      assert.deepEqual(seen, [1, 2, 3, 4])
    })

    test('a duplicate while the first is in flight is answered busy at once, not blocked behind it', async () => {
      const s = await store()
      const key = uniqueKey()
      const first = held(key)
      const settling = s.settle(key, first.work)
      await first.inside
      let ranAgain = false
      // Resolving while the first still waits on its gate is what shows the duplicate did not block.
      assertStatus(await s.settle(key, async () => { ranAgain = true }), 'busy')
      assert.equal(ranAgain, false)
      first.open()
      assertStatus(await settling, 'completed')
      assertStatus(await s.settle(key, async () => { ranAgain = true }), 'done')
      assert.equal(ranAgain, false)
      assert.equal(await options.count(key), 1)
    })

    test('a duplicate on another store instance over the same table is busy, then done', async () => {
      const [a, b] = [await store(), await store()]
      const key = uniqueKey()
      const first = held(key)
      const settling = a.settle(key, first.work)
      await first.inside
      assertStatus(await b.settle(key, async () => assert.fail('must not run')), 'busy')
      first.open()
      await settling
      assertStatus(await b.settle(key, async () => assert.fail('must not run')), 'done')
    })

    test('20 concurrent settles of one key: the work runs and commits exactly once', async () => {
      const s = await store()
      const key = uniqueKey()
      let runs = 0
      const results = await Promise.all(Array.from({ length: 20 }, () => s.settle(key, async (tx) => {
        runs++
        await options.write(tx, key)
      }).catch((err: unknown) => ({ status: `rejected: ${String(err)}` }))))
      const statuses = results.map((r) => r.status)
      assert.equal(statuses.filter((st) => st === 'completed').length, 1, statuses.join(', '))
      assert.ok(statuses.every((st) => ['completed', 'busy', 'done'].includes(st)), statuses.join(', '))
      assert.equal(runs, 1)
      assert.equal(await options.count(key), 1)
    })

    test('a killed connection rolls back its writes and frees the key for the next attempt', async () => {
      const s = await store()
      const key = uniqueKey()
      const first = held(key)
      const settling = s.settle(key, first.work).then(
        (r: TransactionalResult) => r.status,
        (err: unknown) => `rejected: ${(err as Error).message}`,
      )
      const tx = await first.inside
      await options.killConnection(tx)
      first.open()
      const outcome = await settling
      assert.match(outcome, /^rejected: /, 'a settlement whose connection died must not report completed')
      assert.equal(await options.count(key), 0, 'the killed transaction must leave no row')
      const result = await s.settle(key, async (t2) => { await options.write(t2, key) })
      assertStatus(result, 'completed')
      assert.equal(await options.count(key), 1)
    })

    test('status() tells open, busy and done apart, and counts no attempt', async function () {
      const s = await store()
      if (typeof s.status !== 'function') return skipWithout(this, 'status()')
      const key = uniqueKey()
      assert.equal(await s.status(key), 'open')
      const first = held(key)
      const settling = s.settle(key, async (tx, attempt) => {
        assert.equal(attempt, 1, 'status() must not count an attempt')
        await first.work(tx)
      })
      await first.inside
      assert.equal(await s.status(key), 'busy')
      first.open()
      await settling
      assert.equal(await s.status(key), 'done')
    })

    test('purge() deletes done-markers older than retentionMs, and the key settles anew', async function () {
      const s = await store(200)
      if (typeof (s as Partial<Purgeable>).purge !== 'function') return skipWithout(this, 'purge()')
      const key = uniqueKey()
      await s.settle(key, async () => {})
      assertStatus(await s.settle(key, async () => {}), 'done')
      await new Promise((resolve) => setTimeout(resolve, 400))
      assert.ok(await (s as unknown as Purgeable).purge() >= 1, 'purge must delete the old marker')
      let attempt = 0
      assertStatus(await s.settle(key, async (_tx, n) => { attempt = n }), 'completed')
      assert.equal(attempt, 1, 'a purged key starts counting again')
    })

    ledgerConformance(it, () => store(), { timeoutMs, run })
    crossCheckConformance(it, async () => {
      const s = await store()
      return { store: s, probe: transactionalProbe(s) }
    }, { timeoutMs, run })
  })
}

/** Settles with empty work, for the cross-check cases. */
function transactionalProbe<Tx>(s: TransactionalStore<Tx>): SettleProbe {
  return {
    async settleOnce(key, memo) {
      const r = await s.settle(key, async () => {}, memo)
      if (r.status === 'busy') return { status: 'busy' }
      if (r.status === 'done') return { status: 'done', watched: r.watched, memo: r.memo }
      return { status: 'settled', watched: r.watched, note: r.note }
    },
    async hold(key) {
      let open!: (complete: boolean) => void
      const gate = new Promise<boolean>((resolve) => { open = resolve })
      let entered!: (attempt: number) => void
      const inside = new Promise<number>((resolve) => { entered = resolve })
      const GIVE_BACK = handlerFailure('given back by the conformance suite')
      const settling = s.settle(key, async (_tx, attempt) => {
        entered(attempt)
        if (!(await gate)) throw GIVE_BACK
      })
      // A settle that ends without running the work (busy, done) must not leave the test waiting.
      const attempt = await Promise.race([inside, settling.then((r) => assert.fail(`settle answered ${r.status} without running the work`))])
      return {
        attempt,
        async finish(complete = true) {
          open(complete)
          if (!complete) {
            await assert.rejects(settling, (err) => err === GIVE_BACK)
            return {}
          }
          const r = await settling
          assertStatus(r, 'completed')
          return { watched: r.watched, note: r.note }
        },
      }
    },
  }
}

/** The status of a settle result; a store may add fields (watched, memo, note) the core reads. */
function assertStatus(r: TransactionalResult, status: TransactionalResult['status'], label?: string): void {
  assert.equal(r?.status, status, `${label ? `${label}: ` : ''}expected ${status}, got ${JSON.stringify(r)}`)
}

/**
 * What the shop's work throws in these tests, as a failing handler would: the store must roll the
 * work's writes back and reject with this very object (the tests that hold it check it is).
 */
function handlerFailure(message: string): GuanaitongError {
  return new GuanaitongError(message, 'HANDLER_FAILED')
}
