/**
 * What the SQL stores must do beyond the conformance suite, on both databases: refuse to mark a
 * payment done when the handler ended the transaction itself, create their tables once under a
 * race, and refuse bad options with a message that says what to do.
 */
import { expect } from 'chai'
import { ConfigError, GuanaitongError, ParamError } from '../../src/kernel/errors'
import { MysqlStore, PostgresStore } from '../../src/stores'
import type { TransactionalStore } from '../../src/kernel/types'
import type { SqlDriver } from '../../src/stores/sql/types'
import { mysqlPool, pgPool, sqlTargets, uniqueTable, type ShopTable } from './sql-helpers'

const TARGETS = sqlTargets()

let seq = 0
const key = () => `20110698:paid:S${Date.now() % 1e8}${++seq}`

for (const target of TARGETS) {
  describe(`${target.name}: beyond the conformance suite`, () => {
    const table = uniqueTable('sql')
    let shop: ShopTable
    before(async () => { shop = await target.shop() })
    after(async () => {
      await shop.drop()
      await target.drop(table)
    })

    for (const statement of ['ROLLBACK', 'COMMIT']) {
      it(`a handler that runs ${statement} on ctx.tx itself: not marked done, the next attempt runs the handler`, async () => {
        const store = target.store({ table })
        const k = key()
        const settling = store.settle(k, async (tx) => {
          await shop.write(tx, k)
          await target.run(tx, statement)
        })
        await settling.then(
          () => expect.fail('settle must reject: the done-marker was not in the transaction that took the lock'),
          (err: unknown) => {
            expect(err).to.be.instanceOf(GuanaitongError)
            expect((err as GuanaitongError).code).to.equal('STORE_FAILED')
            // One status per code: the SQL stores' STORE_FAILED is 503, as the notify answer's and RedisStore's.
            expect((err as GuanaitongError).status).to.equal(503)
            expect((err as Error).message).to.match(/^\[express-guanaitong\] SQL store done-marker failed: .*commit or roll back ctx\.tx/)
          },
        )
        const before = await shop.count(k)
        let ran = 0
        expect(await store.settle(k, async () => { ran++ })).to.include({ status: 'completed' })
        expect(ran).to.equal(1)
        // A ROLLBACK took the write with it; a COMMIT made it permanent outside the store's control.
        expect(before).to.equal(statement === 'COMMIT' ? 1 : 0)
      })
    }

    it('a handler that swallows a failed statement: the payment is not marked done unless the transaction can still commit', async () => {
      const store = target.store({ table })
      const k = key()
      const outcome = await store.settle(k, async (tx) => {
        await shop.write(tx, k)
        await target.run(tx, 'SELECT * FROM no_such_table_here').catch(() => {})
      }).then((r) => r.status, (err: unknown) => (err as GuanaitongError).code)
      // PostgreSQL aborts the whole transaction on an error: nothing may commit. MySQL only undoes the statement.
      if (target.name === 'PostgresStore') {
        expect(outcome).to.equal('STORE_FAILED')
        expect(await shop.count(k)).to.equal(0)
      } else {
        expect(outcome).to.equal('completed')
        expect(await shop.count(k)).to.equal(1)
      }
    })

    it("idle connections the server drops (a restart) do not crash a process whose pool has no 'error' listener", async () => {
      const bare = target.bare(table)
      try {
        await Promise.all([1, 2, 3].map((i) => bare.store.settle(`${key()}i${i}`, async () => {})))
        expect(await bare.killIdle()).to.be.greaterThan(0)
        // An unheard 'error' event would be an uncaught exception here, failing this test (and the run).
        await new Promise((resolve) => setTimeout(resolve, 300))
        expect(await bare.store.settle(key(), async () => {})).to.include({ status: 'completed' })
      } finally {
        await bare.end()
      }
    })

    it('refuses a key longer than the marker column with a ParamError, before touching the database', async () => {
      const store = target.store({ table })
      await store.settle(`20110698:paid:${'x'.repeat(200)}`, async () => {}).then(
        () => expect.fail('must reject'),
        (err: unknown) => expect(err).to.be.instanceOf(ParamError).with.property('field', 'key'),
      )
    })

    it('three stores starting at once on a new table create it once, and all settle', async () => {
      const fresh = uniqueTable('race')
      try {
        const stores = [1, 2, 3].map(() => target.store({ table: fresh }))
        const results = await Promise.all(stores.map((s, i) => s.settle(`${key()}r${i}`, async () => {})))
        expect(results.map((r) => r.status)).to.deep.equal(['completed', 'completed', 'completed'])
        expect(await target.exists(fresh)).to.equal(true)
        expect(await target.exists(`${fresh}_unsettled`)).to.equal(true)
      } finally {
        await target.drop(fresh)
      }
    })

    it('createTable: false with no table: a STORE_FAILED naming the table, and nothing created', async () => {
      const missing = uniqueTable('missing')
      const store = target.store({ table: missing, createTable: false })
      await store.settle(key(), async () => {}).then(
        () => expect.fail('must reject'),
        (err: unknown) => {
          expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
          expect((err as Error).message).to.contain(missing)
        },
      )
      expect(await target.exists(missing)).to.equal(false)
    })
  })
}

describe('SQL store options', () => {
  after(async () => {
    for (const target of TARGETS) await target.end()
  })

  const driver: SqlDriver<unknown> = { query: async () => ({ rows: [], affected: 0 }), begin: async () => { throw new Error('unused') } }
  const pg = pgPool(1)
  const my = mysqlPool(1)
  after(async () => {
    await pg.end()
    await my.end()
  })
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['no pool or driver', () => new PostgresStore({} as never), /pass either pool .* not neither/],
    ['both pool and driver', () => new MysqlStore({ pool: my, driver } as never), /not both/],
    ['a callback mysql2 pool', () => new MysqlStore({ pool: { getConnection: (cb: unknown) => cb } as never }), /mysql2 promise pool/],
    ['a table name with SQL in it', () => new PostgresStore({ pool: pg, table: 'x; DROP TABLE orders' }), /table must be a plain SQL name/],
    ['a table name too long for the ledger table beside it', () => new PostgresStore({ pool: pg, table: 'a'.repeat(51) }), /table must be a plain SQL name/],
    ['a misspelt option', () => new PostgresStore({ pool: pg, retentionMS: 1 } as never), /did you mean "retentionMs"/],
    ['purgeEveryMs: 0', () => new PostgresStore({ pool: pg, purgeEveryMs: 0 }), /purgeEveryMs/],
  ]
  for (const [what, make, message] of cases) {
    it(`refuses ${what} with a ConfigError that says what to do`, () => {
      expect(make).to.throw(ConfigError, message)
    })
  }

  it('takes a driver of its own instead of a pool', () => {
    expect(new PostgresStore({ driver, table: 'gat_custom' }).table).to.equal('gat_custom')
  })
})
