import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type pg from 'pg'
import { PostgresStore, postgresSchema } from '../../src/stores'
import { transactionalStoreConformance } from '../../src/testing/transactional-conformance'
import { pgDriver } from '../../src/stores/sql/drivers'
import { blindReads, heldSettlement, pgKill, pgPool, pgShopTable, uniqueTable, type ShopTable } from './sql-helpers'

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

  it('a duplicate that read "no row" just before the first created it is still busy at once: ON CONFLICT DO NOTHING does not wait', async () => {
    const key = `20110698:paid:R${Date.now()}`
    const first = heldSettlement(new PostgresStore({ pool, table }), key)
    await first.inside
    const raced = blindReads(pgDriver(pool))
    raced.blind(1)
    expect(await new PostgresStore({ driver: raced, table }).settle(key, async () => { throw new Error('must not run') }))
      .to.deep.equal({ status: 'busy' })
    first.open()
    expect(await first.result).to.deep.equal({ status: 'completed' })
  })

  it('docs/sql-stores.md shows the DDL postgresSchema() returns', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/sql-stores.md'), 'utf8')
    expect(doc).to.contain(`\`\`\`sql\n${postgresSchema()}\`\`\``)
  })

  it('exports the DDL it runs', () => {
    expect(postgresSchema('shop.gat_settlements')).to.contain('CREATE TABLE IF NOT EXISTS shop.gat_settlements')
    expect(postgresSchema()).to.contain('CREATE INDEX IF NOT EXISTS gat_settlements_touched_at ON gat_settlements (touched_at)')
  })
})
