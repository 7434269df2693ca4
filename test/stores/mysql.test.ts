import { expect } from 'chai'
import type mysql from 'mysql2/promise'
import { MysqlStore, mysqlSchema } from '../../src/stores'
import { transactionalStoreConformance } from '../../src/testing/transactional-conformance'
import { mysqlKill, mysqlPool, mysqlShopTable, uniqueTable, type ShopTable } from './sql-helpers'

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

  it('exports the DDL it runs', () => {
    expect(mysqlSchema()).to.contain('COLLATE utf8mb4_bin')
  })
})
