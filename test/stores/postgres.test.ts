import { expect } from 'chai'
import type pg from 'pg'
import { PostgresStore, postgresSchema } from '../../src/stores'
import { transactionalStoreConformance } from '../../src/testing/transactional-conformance'
import { pgKill, pgPool, pgShopTable, uniqueTable, type ShopTable } from './sql-helpers'

const pool = pgPool()
const table = uniqueTable('pg')
let shop: ShopTable

before(async () => { shop = await pgShopTable(pool) })
after(async () => {
  await shop.drop()
  await pool.query(`DROP TABLE IF EXISTS ${table}`)
  await pool.end()
})

transactionalStoreConformance('PostgresStore', ({ retentionMs }) => new PostgresStore({ pool, table, retentionMs }), {
  write: (tx, id) => shop.write(tx, id),
  count: (id) => shop.count(id),
  killConnection: pgKill(pool),
})

describe('PostgresStore', () => {
  it('hands the pool\'s PoolClient to the work as tx, and gives every connection back', async () => {
    const store = new PostgresStore({ pool, table })
    let tx: pg.PoolClient | undefined
    await store.settle(`20110698:paid:P${Date.now()}`, async (client) => { tx = client as pg.PoolClient })
    expect(tx).to.have.property('query').that.is.a('function')
    expect(pool.totalCount - pool.idleCount).to.equal(0)
  })

  it('exports the DDL it runs', () => {
    expect(postgresSchema('shop.gat_settlements')).to.contain('CREATE TABLE IF NOT EXISTS shop.gat_settlements')
    expect(postgresSchema()).to.contain('CREATE INDEX IF NOT EXISTS gat_settlements_touched_at ON gat_settlements (touched_at)')
  })
})
