import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type mysql from 'mysql2/promise'
import { MysqlStore, mysqlSchema } from '../../src/stores'
import { transactionalStoreConformance } from '../../src/testing/transactional-conformance'
import { mysqlDriver } from '../../src/stores/sql/drivers'
import { blindReads, heldSettlement, mysqlKill, mysqlPool, mysqlShopTable, uniqueTable, type ShopTable } from './sql-helpers'

const pool = mysqlPool()
const table = uniqueTable('my')
let shop: ShopTable

before(async () => { shop = await mysqlShopTable(pool) })
after(async () => {
  await shop.drop()
  await pool.query(`DROP TABLE IF EXISTS ${table}`)
  await pool.end()
})

transactionalStoreConformance('MysqlStore (MariaDB)', ({ retentionMs }) => new MysqlStore({ pool, table, retentionMs }), {
  write: (tx, id) => shop.write(tx, id),
  count: (id) => shop.count(id),
  killConnection: mysqlKill(pool),
})

describe('MysqlStore', () => {
  it('hands the pool\'s PoolConnection to the work as tx', async () => {
    const store = new MysqlStore({ pool, table })
    let tx: mysql.PoolConnection | undefined
    await store.settle(`20110698:paid:M${Date.now()}`, async (conn) => { tx = conn as mysql.PoolConnection })
    expect(tx).to.have.property('threadId').that.is.a('number')
  })

  it('keeps keys that differ only in case apart (binary collation)', async () => {
    const store = new MysqlStore({ pool, table })
    const base = `20110698:paid:C${Date.now()}`
    expect(await store.settle(`${base}a`, async () => {})).to.deep.equal({ status: 'completed' })
    expect(await store.settle(`${base}A`, async () => {})).to.deep.equal({ status: 'completed' })
  })

  it('docs/sql-stores.md shows the DDL mysqlSchema() returns', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/sql-stores.md'), 'utf8')
    expect(doc).to.contain(`\`\`\`sql\n${mysqlSchema()}\`\`\``)
  })

  it('a duplicate that read "no row" just before the first created it waits in its INSERT until the first commits, then reads done (docs/sql-stores.md)', async () => {
    const key = `20110698:paid:R${Date.now()}`
    const first = heldSettlement(new MysqlStore({ pool, table }), key)
    await first.inside
    const raced = blindReads(mysqlDriver(pool))
    raced.blind(1)
    let settled = false
    const duplicate = new MysqlStore({ driver: raced, table }).settle(key, async () => { throw new Error('must not run') })
      .finally(() => { settled = true })
    await new Promise((r) => setTimeout(r, 300))
    // An INSERT that meets a key another transaction has locked waits for that lock on InnoDB.
    expect(settled, 'the duplicate waits behind the first instead of answering busy').to.equal(false)
    first.open()
    expect(await first.result).to.deep.equal({ status: 'completed' })
    expect(await duplicate).to.deep.equal({ status: 'done' })
  })

  it('exports the DDL it runs', () => {
    expect(mysqlSchema()).to.contain('COLLATE utf8mb4_bin')
  })
})
