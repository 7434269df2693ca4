/**
 * The Knex driver of the README ("Other drivers"): the file the README shows, run through the
 * transactional conformance suite on real PostgreSQL and MariaDB, and behind the router.
 */
import { expect } from 'chai'
import assert from 'node:assert/strict'
import express from 'express'
import knex, { type Knex } from 'knex'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import request from 'supertest'
import { knexDriver } from '../../examples/knex-driver'
import { guanaitong } from '../../src/index'
import { MysqlStore, PostgresStore } from '../../src/stores'
import { encodeForm, quietLogger, signNotification } from '../../src/testing/index'
import { transactionalStoreConformance } from '../../src/testing/transactional-conformance'
import { MYSQL_URL, POSTGRES_URL, dropSchemaStatements, uniqueTable } from './sql-helpers'

const root = resolve(import.meta.dirname, '..', '..')

/** The shop's own table, written through the Knex transaction the store hands to the work. */
async function shopTable(db: Knex) {
  const name = uniqueTable('kshop')
  await db.raw(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL)`)
  return {
    name,
    write: (tx: Knex.Transaction, id: string) => tx.raw(`INSERT INTO ${name} (id) VALUES (?)`, [id]),
    count: async (id: string) => Number((await db(name).where({ id }).count({ n: '*' }))[0].n),
    drop: () => db.raw(`DROP TABLE IF EXISTS ${name}`),
  }
}

describe('Knex driver (examples/knex-driver.ts)', () => {
  it('is the code the README shows under "Other drivers", importing the package instead of ../src', () => {
    const readme = readFileSync(resolve(root, 'README.md'), 'utf8')
    const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1])
    const shown = blocks.filter((code) => code.includes('export function knexDriver'))
    expect(shown, 'one README block defines knexDriver').to.have.length(1)
    const file = readFileSync(resolve(root, 'examples/knex-driver.ts'), 'utf8')
    expect(shown[0]).to.equal(file.replace("from '../src/index'", "from 'express-guanaitong'"))
  })
})

// Knex warns of the connection a kill test terminates; any other warning is still printed.
const warn = (message: unknown) => {
  if (!/terminating connection due to administrator command|ECONNRESET/.test(String(message))) console.warn(message)
}

const DATABASES = [
  {
    name: 'PostgreSQL',
    kind: 'postgres' as const,
    db: () => knex({ client: 'pg', connection: POSTGRES_URL, pool: { min: 0, max: 10 }, log: { warn } }),
    store: (driver: ReturnType<typeof knexDriver>, table: string, retentionMs?: number) => new PostgresStore({ driver, table, retentionMs }),
    connectionId: async (tx: Knex.Transaction) => (await tx.raw('SELECT pg_backend_pid() AS id')).rows[0].id,
    kill: 'SELECT pg_terminate_backend(?)',
  },
  {
    name: 'MariaDB',
    kind: 'mysql' as const,
    db: () => knex({ client: 'mysql2', connection: MYSQL_URL, pool: { min: 0, max: 10 }, log: { warn } }),
    store: (driver: ReturnType<typeof knexDriver>, table: string, retentionMs?: number) => new MysqlStore({ driver, table, retentionMs }),
    connectionId: async (tx: Knex.Transaction) => (await tx.raw('SELECT CONNECTION_ID() AS id'))[0][0].id,
    kill: 'KILL ?',
  },
]

/** A Knex instance on `database`, a store table and a shop table, for the enclosing describe; dropped after it. */
function knexFixture(database: (typeof DATABASES)[number]) {
  const fixture = { db: database.db(), table: uniqueTable('knex'), shop: undefined as unknown as Awaited<ReturnType<typeof shopTable>> }
  before(async () => { fixture.shop = await shopTable(fixture.db) })
  after(async () => {
    await fixture.shop.drop()
    for (const statement of dropSchemaStatements(database.kind, fixture.table)) await fixture.db.raw(statement)
    await fixture.db.destroy()
  })
  return fixture
}

for (const database of DATABASES) {
  describe(`Knex driver on ${database.name}`, () => {
    const k = knexFixture(database)
    transactionalStoreConformance(`${database.name} through Knex`, ({ retentionMs }) => database.store(knexDriver(k.db), k.table, retentionMs), {
      write: (tx, id) => k.shop.write(tx, id),
      count: (id) => k.shop.count(id),
      killConnection: async (tx) => k.db.raw(database.kill, [Number(await database.connectionId(tx))]),
    })
  })
}

describe('Knex driver on PostgreSQL, behind the router', () => {
  const k = knexFixture(DATABASES[0])
  const { db, table } = k

  it('a work that swallows a failed statement: PostgreSQL aborted the transaction, so nothing commits', async () => {
    const store = new PostgresStore({ driver: knexDriver(db), table })
    const key = `20110698:paid:K${Date.now()}`
    await assert.rejects(store.settle(key, async (tx) => {
      await k.shop.write(tx, key)
      await tx.raw('SELECT 1 / 0').catch(() => {})
    }), /done-marker failed: .*current transaction is aborted/)
    expect(await k.shop.count(key)).to.equal(0)
  })

  it('behind the router: onPaid marks the order paid through ctx.tx once; the second delivery is acknowledged without running it', async () => {
    const orders = uniqueTable('korders')
    await db.raw(`CREATE TABLE ${orders} (outer_trade_no VARCHAR(22) PRIMARY KEY, status VARCHAR(10) NOT NULL, trade_no VARCHAR(32))`)
    try {
      await db(orders).insert({ outer_trade_no: 'K1', status: 'pending' })
      let runs = 0
      const app = express()
      app.use('/gat', guanaitong({
        appId: '20110698', appSecret: 'knex-secret', payPath: false, logger: quietLogger(),
        store: new PostgresStore({ driver: knexDriver(db), table }),
        onPaid: async (payment, _req, ctx) => {
          runs++
          const trx = ctx.tx as Knex.Transaction
          const updated = await trx(orders).where({ outer_trade_no: payment.outerTradeNo, status: 'pending' })
            .update({ status: 'paid', trade_no: payment.tradeNo })
          if (updated !== 1) throw new Error(`order ${payment.outerTradeNo} is not pending`)
        },
      }))
      const notify = () => request(app).post('/gat/notify').type('form').send(encodeForm(signNotification({
        appid: '20110698', outer_trade_no: 'K1', total_amount: '9.90', buyer_open_id: 'b', trade_no: '2018070920000005',
      }, 'knex-secret')))
      await notify().expect(200, 'success')
      await notify().expect(200, 'success')
      expect(runs).to.equal(1)
      expect(await db(orders).where({ outer_trade_no: 'K1' }).first()).to.deep.equal({ outer_trade_no: 'K1', status: 'paid', trade_no: '2018070920000005' })
    } finally {
      await db.raw(`DROP TABLE IF EXISTS ${orders}`)
    }
  })
})
