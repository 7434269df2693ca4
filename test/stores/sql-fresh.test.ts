/**
 * The fresh claim (issue 20, one commit per new settlement): a key with no row is inserted already
 * done in the transaction the handler writes through. What that must not break, on both databases,
 * through the package's own drivers: a failed fresh attempt is still counted; a second settlement
 * of a key in flight is busy at once; the handler's statements run with the connection's own lock
 * timeout, not the claim's 1 ms; a handler that ends the transaction itself fails the settlement
 * on a fresh row and on a row that was there; a new settlement commits once; and a schema of 0.3
 * (MySQL's `_v1` procedures, PostgreSQL without a claim function) gets this version's routines.
 */
import { expect } from 'chai'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { GuanaitongError } from '../../src/kernel/errors'
import type { TransactionalResult } from '../../src/kernel/types'
import { MysqlStore, PostgresStore, mysqlSchemaStatements, mysqlUpgrade, postgresSchemaStatements, postgresUpgrade } from '../../src/stores'
import { sleep } from '../helpers'
import { SQL_KINDS, dropSchemaStatements, mysqlPool, pgPool, sqlTarget, uniqueTable, type ShopTable } from './sql-helpers'

const NAMES = { postgres: 'PostgresStore', mysql: 'MysqlStore (MariaDB)' } as const

let seq = 0
const key = (tag = 'F') => `20110698:paid:${tag}${Date.now() % 1e8}n${++seq}`

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void
  const promise = new Promise<void>((resolve) => { fire = resolve })
  return { promise, fire }
}

for (const kind of SQL_KINDS) {
  describe(`${NAMES[kind]}: the fresh claim`, () => {
    const db = sqlTarget(kind, 6)
    const table = uniqueTable(`fresh_${kind}`)
    let shop: ShopTable
    const pgSide = kind === 'postgres' ? pgPool(2) : undefined
    const mySide = kind === 'mysql' ? mysqlPool(2) : undefined
    /** A pool of one connection whose every statement is recorded (made here, not in the test: see keptOpen in sql-helpers). */
    const sent: string[] = []
    const counted = kind === 'postgres' ? pgPool(1) : undefined
    counted?.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown
      ;(client as { query: unknown }).query = (...args: unknown[]) => {
        sent.push(String(typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text))
        return query(...args)
      }
    })
    /** One statement outside the store. */
    const sql = async (text: string, params: unknown[] = []): Promise<any[]> => (pgSide
      ? (await pgSide.query(text.replace(/\?/g, ((n) => () => `$${++n}`)(0)), params)).rows
      : (await mySide!.query(text, params))[0] as any[])
    const store = () => db.store({ table, purgeEveryMs: false })

    before(async () => {
      await store().settle(key('W'), async () => {}) // creates the tables
      shop = await db.shop()
    })
    after(async () => {
      await shop.drop()
      await db.drop(table)
      await db.end()
      await pgSide?.end()
      await mySide?.end()
      await counted?.end()
    })

    it('a failed fresh attempt leaves no done-marker and is counted: the next attempt is 2, and its success marks the row done', async () => {
      const k = key()
      const attempts: number[] = []
      const failing = await store().settle(k, async (tx, attempt) => {
        attempts.push(attempt)
        await shop.write(tx, k)
        throw new Error('the handler failed')
      }).then(() => 'resolved', (err: Error) => err.message)
      expect(failing).to.equal('the handler failed')
      expect(await shop.count(k), 'rolled back with the marker').to.equal(0)
      const [row] = await sql(`SELECT attempts, done_at FROM ${table} WHERE settle_key = ?`, [k])
      expect(row, 'the count created the row the rollback took away').to.not.equal(undefined)
      expect([Number(row.attempts), row.done_at]).to.deep.equal([1, null])
      expect(await store().settle(k, async (tx, attempt) => {
        attempts.push(attempt)
        await shop.write(tx, k)
      }, 'm2')).to.deep.equal({ status: 'completed', watched: false })
      expect(attempts).to.deep.equal([1, 2])
      const [done] = await sql(`SELECT attempts, memo FROM ${table} WHERE settle_key = ? AND done_at IS NOT NULL`, [k])
      expect([Number(done.attempts), done.memo]).to.deep.equal([2, 'm2'])
    })

    it('a second settlement, peek and status of a key whose fresh settlement is in flight are busy at once, and nothing waits', async () => {
      const k = key()
      const inWork = signal()
      const finish = signal()
      const first = store().settle(k, async (tx) => {
        await shop.write(tx, k)
        inWork.fire()
        await finish.promise
      }, 'first')
      await inWork.promise
      try {
        const started = Date.now()
        const second = await Promise.race([
          store().settle(k, async () => expect.fail('the second settlement ran the work')),
          sleep(2000).then((): TransactionalResult | 'waiting' => 'waiting'),
        ])
        expect(second).to.deep.equal({ status: 'busy' })
        expect((await store().peek!(k, 'late note')).status).to.equal('busy')
        expect(await store().status!(k)).to.equal('busy')
        expect(Date.now() - started, 'none of them waited for the first settlement').to.be.below(1500)
      } finally {
        finish.fire()
      }
      expect(await first).to.deep.equal({ status: 'completed', watched: false })
      expect(await store().settle(k, async () => expect.fail('a duplicate ran the work'))).to.deep.equal({ status: 'done', memo: 'first', watched: false })
      const [row] = await sql(`SELECT note FROM ${table} WHERE settle_key = ?`, [k])
      expect(row.note, 'a busy peek leaves no note').to.equal(null)
    })

    for (const path of ['fresh', 'there'] as const) {
      it(`the handler's own statements wait for a lock as long as the connection allows (${path === 'fresh' ? 'a fresh row' : 'a row that was there'}), not the claim's 1 ms`, async () => {
        const k = key(path === 'fresh' ? 'LF' : 'LT')
        if (path === 'there') await store().peek!(k, 'a note creates the row')
        await sql(`INSERT INTO ${shop.name} (id) VALUES (?)`, [`${k}-locked`])
        // Another connection holds the shop's row for 300 ms; the handler updates it meanwhile.
        const holder = pgSide ? await pgSide.connect() : await mySide!.getConnection()
        const hold = async (text: string) => { await (holder as { query(text: string): Promise<unknown> }).query(text) }
        await hold('BEGIN')
        await hold(`SELECT id FROM ${shop.name} WHERE id = '${k}-locked' FOR UPDATE`)
        const released = sleep(300).then(() => hold('COMMIT'))
        let waited = 0
        try {
          const result = await store().settle(k, async (tx) => {
            const started = Date.now()
            await db.run(tx, `UPDATE ${shop.name} SET source = 'handler' WHERE id = '${k}-locked'`)
            waited = Date.now() - started
          })
          expect(result).to.include({ status: 'completed' })
        } finally {
          await released
          ;(holder as { release(): void }).release()
        }
        expect(waited, 'the UPDATE waited for the other connection').to.be.above(150)
        const [row] = await sql(`SELECT source FROM ${shop.name} WHERE id = ?`, [`${k}-locked`])
        expect(row.source).to.equal('handler')
      })
    }

    it('a handler that ends the transaction itself fails the settlement on a row that was there too, and the next attempt runs it', async () => {
      for (const statement of ['ROLLBACK', 'COMMIT']) {
        const k = key('X')
        await store().settle(k, async () => { throw new Error('first attempt fails') }).catch(() => {})
        const err = await store().settle(k, async (tx) => {
          await shop.write(tx, k)
          await db.run(tx, statement)
        }).then(() => undefined, (e: unknown) => e)
        expect(err, statement).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
        expect((err as Error).message).to.match(/commit or roll back ctx\.tx/)
        let ran = 0
        // The attempt the handler ended is not counted (nothing told the store it failed).
        expect(await store().settle(k, async (_tx, attempt) => {
          ran++
          expect(attempt).to.equal(2)
        })).to.include({ status: 'completed' })
        expect(ran, statement).to.equal(1)
      }
    })

    if (kind === 'postgres') {
      it('a new settlement sends one COMMIT, in its finish script; its claim script none', async () => {
        const s = new PostgresStore({ pool: counted!, table, purgeEveryMs: false })
        await s.settle(key('C'), async () => {}) // its first use probes the schema
        sent.length = 0
        expect(await s.settle(key('C'), async (tx) => { await shop.write(tx, 'c') })).to.include({ status: 'completed' })
        const commits = sent.flatMap((text) => text.match(/\bCOMMIT\b/g) ?? [])
        expect(commits, sent.join('\n')).to.have.length(1)
        expect(sent.filter((text) => !text.includes(shop.name))).to.have.length(2)
      })
    }
  })
}

for (const kind of SQL_KINDS) {
  describe(`${NAMES[kind]}: a schema of 0.3`, () => {
    const pgSide = kind === 'postgres' ? pgPool(2) : undefined
    const mySide = kind === 'mysql' ? mysqlPool(2) : undefined
    const sql = async (text: string, params: unknown[] = []): Promise<any[]> => (pgSide
      ? (await pgSide.query(text, params)).rows
      : (await mySide!.query(text, params))[0] as any[])
    const table = uniqueTable('v1')
    const store = (createTable: boolean) => (pgSide
      ? new PostgresStore({ pool: pgSide, table, createTable, purgeEveryMs: false })
      : new MysqlStore({ pool: mySide!, table, createTable, purgeEveryMs: false }))
    const upgrade = kind === 'postgres' ? postgresUpgrade : mysqlUpgrade
    const routines = kind === 'postgres' ? [`${table}_claim_v2`] : [`${table}_claim_v2`, `${table}_finish_v2`]
    const present = async () => (pgSide
      ? (await sql("SELECT proname AS name FROM pg_proc WHERE proname LIKE $1 AND pronamespace = current_schema()::regnamespace", [`${table}%`]))
      : await sql('SELECT ROUTINE_NAME AS name FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME LIKE ?', [`${table}%`]))
      .map((r: { name: string }) => r.name).sort()
    after(async () => {
      for (const statement of dropSchemaStatements(kind, table)) await sql(statement)
      await pgSide?.end()
      await mySide?.end()
    })

    it(`gets this version's routines on first use (createTable: true), and ${kind}Upgrade() lists them for createTable: false`, async () => {
      // This version's tables without its routines: what 0.3 created (MySQL's procedures were _v1; PostgreSQL had none).
      const schema = kind === 'postgres' ? postgresSchemaStatements(table) : mysqlSchemaStatements(table)
      for (const statement of schema.filter((s) => !/^CREATE (OR REPLACE FUNCTION|PROCEDURE)/.test(s))) await sql(statement)
      expect(upgrade(table).filter((s) => /^CREATE (OR REPLACE FUNCTION|PROCEDURE)/.test(s)).map((s) => s.split('(')[0].split(' ').pop()))
        .to.deep.equal(routines)
      const refused = await store(false).settle(key('U'), async () => {}).then(() => undefined, (e: unknown) => e)
      expect(refused).to.be.instanceOf(GuanaitongError)
      expect((refused as GuanaitongError).code).to.equal('STORE_FAILED')
      expect((refused as Error).message).to.contain(`${kind}Upgrade('${table}')`)
      expect(await store(true).settle(key('U'), async () => {})).to.include({ status: 'completed' })
      expect(await present()).to.deep.equal(routines)
    })

    it(`the statements of ${kind}Upgrade() give a createTable: false store what it calls`, async () => {
      for (const statement of dropSchemaStatements(kind, table).slice(1)) await sql(statement)
      // Each statement can run again (PostgreSQL and MariaDB): the columns are there already.
      for (const statement of upgrade(table)) await sql(statement)
      expect(await present()).to.deep.equal(routines)
      expect(await store(false).settle(key('V'), async () => {})).to.include({ status: 'completed' })
    })
  })
}
