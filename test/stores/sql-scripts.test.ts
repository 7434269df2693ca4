/**
 * The SQL stores' two-round-trip settlement (issue 20) and what it must not break: statements
 * counted at the client for the package's drivers and for Knex; keys and memos holding quotes,
 * backslashes, NUL, 4-byte UTF-8 and `'; DROP TABLE` stored exactly and running nothing; keys
 * differing only by trailing spaces kept apart (issue 21 item 1); tables created by 0.2 upgraded;
 * and `ctx.tx` refusing every call once its settlement ended (issue 21 item 5).
 */
import { expect } from 'chai'
import express from 'express'
import request from 'supertest'
import { guanaitong } from '../../src/index'
import { encodeForm, quietLogger, signNotification } from '../../src/testing/index'
import knex, { type Knex } from 'knex'
import type mysql from 'mysql2/promise'
import type pg from 'pg'
import { knexDriver } from '../../examples/knex-driver'
import { GuanaitongError, ParamError } from '../../src/kernel/errors'
import { MysqlStore, PostgresStore, mysqlUpgrade, postgresUpgrade } from '../../src/stores'
import type { SqlStore } from '../../src/stores/sql/sql-store'
import { guardTx } from '../../src/stores/sql/guard'
import { MYSQL_URL, POSTGRES_URL, dropSchemaStatements, mysqlPool, pgPool, uniqueTable, type SqlKind } from './sql-helpers'

let seq = 0
const key = (tag = 'R') => `20110698:paid:${tag}${Date.now() % 1e8}${++seq}`

/** A pool of the package's driver whose every statement is counted where the connection sends it. */
interface CountedPool {
  kind: SqlKind
  store(table: string, options?: { createTable?: boolean }): SqlStore<any>
  /** Statements sent so far (pg: Client#query; mysql2: each connection's query, which START TRANSACTION/COMMIT go through). */
  sent: string[]
  /** Runs one statement outside any settlement. */
  query(sql: string, params?: unknown[]): Promise<any[]>
  /** Connections left idle in a transaction whose last statement named `table` (PostgreSQL; 0 on MySQL). */
  idleInTransaction(table: string): Promise<number>
  /** The connection behind a handler's tx, for the guard tests. */
  write(tx: unknown, table: string, id: string): Promise<unknown>
  end(): Promise<void>
}

/** Records the text of every statement `conn` sends (pg: a string or `{ text }`; mysql2: a string or `{ sql }`). */
function countQueries(conn: { query: (...args: any[]) => any }, sent: string[]): void {
  const query = conn.query.bind(conn)
  conn.query = (...args: any[]) => {
    sent.push(typeof args[0] === 'string' ? args[0] : args[0].text ?? args[0].sql)
    return query(...args)
  }
}

function countedPg(max: number): CountedPool {
  const pool = pgPool(max)
  // Its own connection: the counted pool's may all be parked, and a query on it would wait for them.
  const observer = pgPool(1)
  const sent: string[] = []
  pool.on('connect', (client) => countQueries(client, sent))
  return {
    kind: 'postgres',
    sent,
    store: (table, options) => new PostgresStore({ pool, table, purgeEveryMs: false, ...options }),
    query: async (sql, params) => (await pool.query(sql, params)).rows,
    idleInTransaction: async (table) => Number((await observer.query(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND strpos(query, $1) > 0", [table])).rows[0].n),
    write: (tx, table, id) => (tx as pg.PoolClient).query(`INSERT INTO ${table} (id) VALUES ($1)`, [id]),
    end: async () => {
      await pool.end()
      await observer.end()
    },
  }
}

function countedMysql(max: number): CountedPool {
  const pool = mysqlPool(max)
  const sent: string[] = []
  pool.pool.on('connection', (conn) => countQueries(conn, sent))
  return {
    kind: 'mysql',
    sent,
    store: (table, options) => new MysqlStore({ pool, table, purgeEveryMs: false, ...options }),
    query: async (sql, params) => (await pool.query(sql, params))[0] as any[],
    idleInTransaction: async () => 0,
    write: (tx, table, id) => (tx as mysql.PoolConnection).query(`INSERT INTO ${table} (id) VALUES (?)`, [id]),
    end: () => pool.end(),
  }
}

async function dropAll(db: CountedPool, table: string, shop?: string): Promise<void> {
  for (const statement of dropSchemaStatements(db.kind, table)) await db.query(statement)
  if (shop) await db.query(`DROP TABLE IF EXISTS ${shop}`)
}

/** Statements sent while `run` ran, and all of them once the connection went quiet (a ROLLBACK the answer did not wait for). */
async function counting(db: CountedPool, run: () => Promise<unknown>): Promise<{ answered: string[]; all: string[] }> {
  const from = db.sent.length
  await run()
  const answered = db.sent.slice(from)
  await new Promise((resolve) => setTimeout(resolve, 100))
  return { answered, all: db.sent.slice(from) }
}

for (const make of [countedPg, countedMysql]) {
  const kind = make === countedPg ? 'PostgresStore' : 'MysqlStore (MariaDB)'
  describe(`${kind}: two round trips per settlement`, () => {
    const db = make(3)
    const table = uniqueTable('rt')
    const shop = uniqueTable('rtshop')
    let store: ReturnType<CountedPool['store']>
    before(async () => {
      store = db.store(table)
      await store.settle(key('W'), async () => {}) // creates the tables: not counted below
      await db.query(`CREATE TABLE ${shop} (id VARCHAR(191) NOT NULL)`)
    })
    after(async () => {
      await dropAll(db, table, shop)
      await db.end()
    })

    it('a new notification: the claim script and the finish script, beyond the shop\'s own statement', async () => {
      const k = key()
      const { answered, all } = await counting(db, () => store.settle(k, async (tx) => { await db.write(tx, shop, k) }, 'memo'))
      const own = answered.filter((sql) => sql.includes(shop))
      expect(own, 'the shop\'s INSERT').to.have.length(1)
      expect(answered.length - own.length, answered.join('\n')).to.equal(2)
      expect(all).to.deep.equal(answered)
    })

    it(db.kind === 'postgres'
      ? 'a duplicate: one round trip; the empty transaction its claim opened is rolled back first in the next claim\'s script, or on its own when none comes'
      : 'a duplicate: one round trip (the claim procedure starts no transaction for a done row)', async () => {
      const k = key()
      await store.settle(k, async () => {}, 'first')
      const duplicate = () => store.settle(k, async () => expect.fail('a duplicate runs nothing'))
      const { answered, all } = await counting(db, async () => {
        expect(await duplicate()).to.deep.equal({ status: 'done', memo: 'first', watched: false })
        expect(await duplicate()).to.deep.equal({ status: 'done', memo: 'first', watched: false })
      })
      expect(answered, answered.join('\n')).to.have.length(2)
      if (db.kind === 'postgres') {
        expect(answered[0]).to.match(/^BEGIN; SELECT/)
        expect(answered[1]).to.match(/^ROLLBACK; BEGIN; SELECT/)
        expect(all.slice(2)).to.deep.equal(['ROLLBACK'])
      } else {
        expect(all).to.deep.equal(answered)
      }
      expect(await db.idleInTransaction(table), 'connections left idle in a transaction').to.equal(0)
    })

    it('20 concurrent duplicates on a pool of 3: one statement each (PostgreSQL: the parked ROLLBACKs ride on the claims waiting in line), and no connection left in a transaction', async () => {
      const k = key()
      await store.settle(k, async () => {}, 'first')
      const { answered, all } = await counting(db, () => Promise.all(Array.from({ length: 20 }, () => store.settle(k, async () => expect.fail('a duplicate runs nothing')))))
      const claims = answered.filter((sql) => sql !== 'ROLLBACK')
      expect(claims, answered.join('\n')).to.have.length(20)
      expect(all.filter((sql) => sql === 'ROLLBACK').length, 'lone ROLLBACKs: the connections parked when the duplicates stopped').to.be.at.most(db.kind === 'postgres' ? 3 : 0)
      if (db.kind === 'postgres') expect(claims.filter((sql) => sql.startsWith('ROLLBACK; BEGIN;')).length, 'claims that carried a parked ROLLBACK').to.be.at.least(17)
      expect(await db.idleInTransaction(table), 'connections left idle in a transaction').to.equal(0)
    })
  })

  describe(`${kind}: behind the router`, () => {
    const db = make(3)
    const table = uniqueTable('rtr')
    const shop = uniqueTable('rtrshop')
    before(() => db.query(`CREATE TABLE ${shop} (id VARCHAR(191) NOT NULL)`))
    after(async () => {
      await dropAll(db, table, shop)
      await db.end()
    })

    it('a new notification sends the two scripts and the shop\'s INSERT, a duplicate the claim script (PostgreSQL: its ROLLBACK after the answer, none coming to carry it); the ledger is not touched', async () => {
      const app = express()
      app.use('/gat', guanaitong({
        appId: '20110698', appSecret: 'rt-secret', payPath: false, logger: quietLogger(), store: db.store(table),
        onPaid: async (payment, _req, ctx) => { await db.write(ctx.tx, shop, payment.outerTradeNo) },
      }))
      const notify = (order: string) => request(app).post('/gat/notify').type('form').send(encodeForm(signNotification({
        appid: '20110698', outer_trade_no: order, total_amount: '9.90', buyer_open_id: 'b', trade_no: '2018070920000005',
      }, 'rt-secret'))).expect(200, 'success')
      await notify('WARM') // creates the tables
      const order = `RT${Date.now() % 1e8}`
      const fresh = await counting(db, () => notify(order))
      expect(fresh.all.filter((sql) => !sql.includes(shop)), fresh.all.join('\n')).to.have.length(2)
      expect(fresh.all.filter((sql) => sql.includes(shop))).to.have.length(1)
      const duplicate = await counting(db, () => notify(order))
      expect(duplicate.answered, duplicate.answered.join('\n')).to.have.length(1)
      expect(duplicate.all.slice(1)).to.deep.equal(db.kind === 'postgres' ? ['ROLLBACK'] : [])
      expect([...fresh.all, ...duplicate.all].filter((sql) => sql.includes('_unsettled'))).to.deep.equal([])
    })
  })

  describe(`${kind}: values in the scripts`, () => {
    const db = make(3)
    const table = uniqueTable('esc')
    const canary = uniqueTable('canary')
    before(() => db.query(`CREATE TABLE ${canary} (id INT)`))
    after(async () => {
      await dropAll(db, table, canary)
      await db.end()
    })

    const nasty = [
      "O'Brien''s",
      'back\\slash\\\\ and \\\'',
      '𝄞 and 😀 (4-byte UTF-8)',
      `'; DROP TABLE ${canary}; --`,
      `\\'); DROP TABLE ${canary}; SELECT ('`,
      '$$; DROP TABLE x; $$',
      '?, ?, $1',
    ]
    for (const value of nasty) {
      it(`a key and a memo holding ${JSON.stringify(value)} are stored exactly and run nothing`, async () => {
        const store = db.store(table)
        const k = `20110698:paid:${value}`
        let runs = 0
        expect(await store.settle(k, async () => { runs++ }, value)).to.deep.equal({ status: 'completed', watched: false })
        expect(await store.settle(k, async () => { runs++ })).to.deep.equal({ status: 'done', memo: value, watched: false })
        expect(runs).to.equal(1)
        const rows = await db.query(`SELECT settle_key, memo FROM ${table} WHERE memo = ?`.replace('?', db.kind === 'postgres' ? '$1' : '?'), [value])
        expect(rows.map((r) => String(r.settle_key))).to.deep.equal([k])
        expect(await db.query(`SELECT count(*) AS n FROM ${canary}`)).to.have.length(1)
      })
    }

    it(db.kind === 'postgres'
      ? 'a key or memo holding NUL is refused before any statement (PostgreSQL text cannot hold it)'
      : 'a key and a memo holding NUL are stored exactly', async () => {
      const store = db.store(table)
      const k = '20110698:paid:N\0UL'
      let runs = 0
      if (db.kind === 'postgres') {
        const before = db.sent.length
        const err = await store.settle(k, async () => { runs++ }).then(() => undefined, (e: unknown) => e)
        expect(err).to.be.instanceOf(ParamError)
        const memo = await store.settle(key(), async () => { runs++ }, 'm\0').then(() => undefined, (e: unknown) => e)
        expect(memo).to.be.instanceOf(ParamError)
        expect(runs, 'refused before the work').to.equal(0)
        expect(db.sent.slice(before)).to.deep.equal([])
        return
      }
      expect(await store.settle(k, async () => { runs++ }, 'm\0x')).to.deep.equal({ status: 'completed', watched: false })
      expect(await store.settle(k, async () => { runs++ })).to.deep.equal({ status: 'done', memo: 'm\0x', watched: false })
      expect(runs).to.equal(1)
      const [row] = await db.query(`SELECT HEX(settle_key) AS hex FROM ${table} WHERE settle_key = ?`, [k])
      expect(row.hex).to.equal(Buffer.from(k).toString('hex').toUpperCase())
    })
  })

  describe(`${kind}: keys that differ only by trailing spaces`, () => {
    const db = make(3)
    const table = uniqueTable('pad')
    after(async () => {
      await dropAll(db, table)
      await db.end()
    })

    it('are two settlements', async () => {
      const store = db.store(table)
      const base = key('P')
      const ran: string[] = []
      for (const k of [base, `${base} `, `${base}  `, `${base}\t`]) {
        expect(await store.settle(k, async () => { ran.push(k) })).to.deep.equal({ status: 'completed', watched: false })
      }
      expect(ran).to.have.length(4)
    })

    it('are two ledger records', async () => {
      const store = db.store(table) as unknown as MysqlStore
      const base = key('L')
      const record = (k: string) => ({
        key: k, appId: '20110698', outerTradeNo: k.split(':')[2], totalAmount: '1.00', totalFen: 100, buyerOpenId: 'b',
        tradeNo: null, reason: 'AMBIGUOUS' as const, since: 1, deadline: 2,
      })
      await store.watchUnsettled(record(base))
      await store.watchUnsettled(record(`${base} `))
      const keys = (await store.listUnsettled()).map((r) => r.key).filter((k) => k.startsWith(base))
      expect(keys.sort()).to.deep.equal([base, `${base} `])
      await store.resolveUnsettled(`${base} `)
      expect((await store.listUnsettled()).map((r) => r.key).filter((k) => k.startsWith(base))).to.deep.equal([base])
    })
  })

  describe(`${kind}: a table created by 0.2`, () => {
    const db = make(3)
    const table = uniqueTable('old')
    after(async () => {
      await dropAll(db, table)
      await db.end()
    })

    it('is upgraded on first use (createTable: true), its done-markers kept; the upgrade statements are exported for createTable: false', async () => {
      // 0.2's DDL, as postgresSchema()/mysqlSchema() returned it.
      const old = db.kind === 'postgres'
        ? [`CREATE TABLE ${table} (settle_key VARCHAR(191) PRIMARY KEY, attempts INTEGER NOT NULL DEFAULT 0, done_at BIGINT, touched_at BIGINT NOT NULL)`,
            `CREATE TABLE ${table}_unsettled (unsettled_key VARCHAR(191) COLLATE "C" PRIMARY KEY, deadline BIGINT NOT NULL, record TEXT NOT NULL)`]
        : [`CREATE TABLE ${table} (settle_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, attempts INT NOT NULL DEFAULT 0, done_at BIGINT NULL, touched_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
            `CREATE TABLE ${table}_unsettled (unsettled_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, deadline BIGINT NOT NULL, record TEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`]
      for (const statement of old) await db.query(statement)
      const settled = key('U')
      await db.query(`INSERT INTO ${table} (settle_key, attempts, done_at, touched_at) VALUES ('${settled}', 1, 5, ${Date.now()})`)

      const store = db.store(table)
      expect(await store.settle(settled, async () => expect.fail('settled under 0.2'))).to.deep.equal({ status: 'done', watched: false })
      expect(await store.settle(`${settled} `, async () => {})).to.deep.equal({ status: 'completed', watched: false })
      expect((db.kind === 'postgres' ? postgresUpgrade(table) : mysqlUpgrade(table)).length).to.be.greaterThan(0)
    })
  })

  describe(`${kind}: ctx.tx after its settlement ended`, () => {
    // One connection: the next settlement runs on the connection the kept tx belonged to.
    const db = make(1)
    const table = uniqueTable('kept')
    const shop = uniqueTable('keptshop')
    before(async () => {
      await db.store(table).settle(key('W'), async () => {})
      await db.query(`CREATE TABLE ${shop} (id VARCHAR(191) NOT NULL)`)
    })
    after(async () => {
      await dropAll(db, table, shop)
      await db.end()
    })

    it('refuses every call with TX_ENDED, and cannot write into or COMMIT the next settlement\'s transaction', async () => {
      const store = db.store(table)
      let kept: any
      await store.settle(key(), async (tx) => { kept = tx })
      const refused = async (call: () => unknown) => {
        const err = await Promise.resolve().then(call).then(() => undefined, (e: unknown) => e)
        expect(err).to.be.instanceOf(GuanaitongError)
        expect((err as GuanaitongError).code).to.equal('TX_ENDED')
      }
      await refused(() => kept.query('SELECT 1'))

      const next = key('N')
      let release!: () => void
      const gate = new Promise<void>((resolve) => { release = resolve })
      const settling = store.settle(next, async (tx) => {
        await db.write(tx, shop, next)
        await gate
      })
      await new Promise((resolve) => setTimeout(resolve, 100))
      await refused(() => db.write(kept, shop, 'intruder'))
      await refused(() => kept.query('COMMIT'))
      if (db.kind === 'mysql') await refused(() => kept.commit())
      release()
      expect(await settling).to.deep.equal({ status: 'completed', watched: false })
      expect((await db.query(`SELECT id FROM ${shop} ORDER BY id`)).map((r) => r.id)).to.deep.equal([next])
    })
  })
}

const KNEX = [
  { kind: 'postgres', client: 'pg', url: POSTGRES_URL, store: (driver: ReturnType<typeof knexDriver>, table: string) => new PostgresStore({ driver, table, purgeEveryMs: false }) },
  { kind: 'mysql', client: 'mysql2', url: MYSQL_URL, store: (driver: ReturnType<typeof knexDriver>, table: string) => new MysqlStore({ driver, table, purgeEveryMs: false }) },
] as const

for (const k of KNEX) {
  describe(`Knex (${k.client}): statements per settlement, and ctx.tx after it ended`, () => {
    const sent: string[] = []
    let db: Knex
    let store: PostgresStore<Knex.Transaction> | MysqlStore<Knex.Transaction>
    const table = uniqueTable('kx')
    const shop = uniqueTable('kxshop')
    before(async () => {
      db = knex({ client: k.client, connection: k.url, pool: { min: 0, max: 1 } })
      db.on('query', (q: { sql: string }) => sent.push(q.sql))
      store = k.store(knexDriver(db), table)
      await store.settle(key('W'), async () => {})
      await db.raw(`CREATE TABLE ${shop} (id VARCHAR(191) NOT NULL)`)
    })
    after(async () => {
      for (const statement of [...dropSchemaStatements(k.kind, table), `DROP TABLE IF EXISTS ${shop}`]) await db.raw(statement)
      await db.destroy()
    })

    it('a driver of its own takes the statement-by-statement path: 6 for a new notification (read, create, BEGIN, lock, done-marker, COMMIT), 1 for a duplicate', async () => {
      const id = key('K')
      let from = sent.length
      await store.settle(id, async (tx) => { await (tx as Knex.Transaction).raw(`INSERT INTO ${shop} (id) VALUES (?)`, [id]) })
      const fresh = sent.slice(from).filter((sql) => !sql.includes(shop))
      expect(fresh, fresh.join('\n')).to.have.length(6)
      from = sent.length
      expect(await store.settle(id, async () => expect.fail('a duplicate runs nothing'))).to.deep.equal({ status: 'done', watched: false })
      expect(sent.slice(from)).to.have.length(1)
    })

    if (k.kind === 'mysql') {
      it('creates the whole schema through Knex too, procedures included (no `?` in the DDL for Knex to take as a binding)', async () => {
        const [rows] = await db.raw('SELECT ROUTINE_NAME AS name FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME LIKE ?', [`${table}%`])
        expect((rows as Array<{ name: string }>).map((r) => r.name).sort()).to.deep.equal([`${table}_claim_v2`, `${table}_finish_v2`])
      })
    }

    it('the kept Knex transaction refuses every call with TX_ENDED, and the next settlement commits only its own write', async () => {
      let kept: any
      await store.settle(key(), async (tx) => { kept = tx })
      for (const call of [() => kept.raw('SELECT 1'), () => kept(shop).insert({ id: 'intruder' }), () => kept.commit()]) {
        const err = await Promise.resolve().then(call).then(() => undefined, (e: unknown) => e)
        expect(err).to.be.instanceOf(GuanaitongError)
        expect((err as GuanaitongError).code).to.equal('TX_ENDED')
      }
      const next = key('N')
      expect(await store.settle(next, async (tx) => { await (tx as Knex.Transaction)(shop).insert({ id: next }) })).to.deep.equal({ status: 'completed', watched: false })
      const ids = (await db(shop).select('id')).map((r: { id: string }) => r.id)
      expect(ids).to.include(next)
      expect(ids).not.to.include('intruder')
    })
  })
}

describe('guardTx: ctx.tx on its own', () => {
  it('names the call it refuses: a method by its name, a transaction that is itself a function (Knex) as ()', () => {
    const knexLike = Object.assign((table: string) => `from ${table}`, { raw: (sql: string) => sql })
    const handle = guardTx(knexLike, '20110698:paid:G1')
    expect(handle.tx('orders')).to.equal('from orders')
    expect(handle.tx.raw('SELECT 1')).to.equal('SELECT 1')
    handle.end()
    for (const [call, name] of [[() => handle.tx('orders'), 'ctx.tx.()'], [() => handle.tx.raw('SELECT 1'), 'ctx.tx.raw']] as const) {
      const err = (() => { try { call() } catch (e) { return e } })()
      expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'TX_ENDED')
      expect((err as Error).message, name).to.contain(`${name} called after the settlement of 20110698:paid:G1 ended`)
    }
  })

  it('until it ends, ctx.tx is the connection: the same method each read, its own constructor, and a method called on another object runs on that object', () => {
    class Conn {
      query(this: unknown) { return this }
    }
    const conn = new Conn()
    const { tx } = guardTx(conn, '20110698:paid:G3')
    expect(tx.query).to.equal(tx.query)
    expect(tx.constructor).to.equal(Conn)
    expect(tx.query()).to.equal(conn)
    const other = {}
    expect(tx.query.call(other)).to.equal(other)
  })

  it('hands a tx that is no object (a driver of its own may give null or a number) through as it is, and ending it is harmless', () => {
    for (const tx of [null, undefined, 7, 'conn']) {
      const handle = guardTx(tx, '20110698:paid:G2')
      expect(handle.tx).to.equal(tx)
      handle.end()
      expect(handle.tx).to.equal(tx)
    }
  })
})
