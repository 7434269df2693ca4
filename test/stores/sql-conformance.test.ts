import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { mysqlSchema, postgresSchema } from '../../src/stores'
import { transactionalStoreConformance } from '../../src/testing/transactional-conformance'
import { MYSQL_URL, sqlTargets, uniqueTable, type ShopTable } from './sql-helpers'

for (const target of sqlTargets()) {
  const table = uniqueTable('conf')
  let shop: ShopTable
  describe(`${target.name} on the real database`, () => {
    before(async () => { shop = await target.shop() })
    after(async () => {
      await shop.drop()
      await target.drop(table)
      await target.end()
    })

    transactionalStoreConformance(target.name, ({ retentionMs }) => target.store({ table, retentionMs }), {
      write: (tx, id) => shop.write(tx, id),
      count: (id) => shop.count(id),
      killConnection: (tx) => target.kill(tx),
    })

    it('hands the pool\'s own connection to the work as tx', async () => {
      let tx: unknown
      await target.store({ table }).settle(`20110698:paid:H${Date.now()}`, async (conn) => { tx = conn })
      expect(tx).to.have.property('query').that.is.a('function')
    })

    it('works with a schema-qualified table name: creates, finds and settles in it', async () => {
      // The schema the connection uses anyway: PostgreSQL's public, MySQL's database of the URL.
      const schema = target.kind === 'postgres' ? 'public' : new URL(MYSQL_URL).pathname.slice(1)
      const qualified = `${schema}.${uniqueTable('schema')}`
      try {
        const k = `20110698:paid:Q${Date.now()}`
        expect(await target.store({ table: qualified }).settle(k, async () => {}, 'm')).to.include({ status: 'completed' })
        // A second store finds the schema there (its probe) and answers the duplicate.
        expect(await target.store({ table: qualified }).settle(k, async () => expect.fail('a duplicate ran'))).to.deep.equal({ status: 'done', memo: 'm', watched: false })
      } finally {
        await target.drop(qualified)
      }
    })

    it('keeps keys that differ only in case apart', async () => {
      const store = target.store({ table })
      const base = `20110698:paid:C${Date.now()}`
      expect(await store.settle(`${base}a`, async () => {})).to.include({ status: 'completed' })
      expect(await store.settle(`${base}A`, async () => {})).to.include({ status: 'completed' })
    })
  })
}

describe('SQL schema exports', () => {
  it('postgresSchema() gives the DDL of both tables, with the indexes purging and sweeping use', () => {
    const ddl = postgresSchema('shop.gat_settlements')
    expect(ddl).to.contain('CREATE TABLE IF NOT EXISTS shop.gat_settlements (')
    expect(ddl).to.contain('CREATE INDEX IF NOT EXISTS gat_settlements_touched_at ON shop.gat_settlements (touched_at)')
    expect(ddl).to.contain('CREATE TABLE IF NOT EXISTS shop.gat_settlements_unsettled (')
    expect(ddl).to.contain('ON shop.gat_settlements_unsettled (deadline, unsettled_key)')
  })

  it('mysqlSchema() keeps keys as bytes: VARBINARY, no PAD SPACE collation to merge trailing spaces', () => {
    expect(mysqlSchema().match(/(settle|unsettled)_key VARBINARY\(764\) NOT NULL PRIMARY KEY/g)).to.have.length(2)
  })

  it('docs/sql-stores.md shows the DDL both return', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/sql-stores.md'), 'utf8')
    expect(doc).to.contain(`\`\`\`sql\n${postgresSchema()}\`\`\``)
    expect(doc).to.contain(`\`\`\`sql\n${mysqlSchema()}\`\`\``)
  })
})
