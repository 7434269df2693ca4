/**
 * The SQL stores' drivers and dialect checks on their own (src/stores/sql/drivers.ts, dialect.ts),
 * against recording stand-ins for a node-postgres and a mysql2 pool: what each statement and
 * answer becomes, and when a connection goes back to its pool or is destroyed. The stores on
 * real databases: sql-store.test.ts, sql-conformance.test.ts.
 */
import { expect } from 'chai'
import { EventEmitter } from 'node:events'
import { ConfigError, GuanaitongError, MESSAGE_PREFIX, ParamError } from '../../src/kernel/errors'
import { PostgresStore } from '../../src/stores/postgres'
import { MysqlStore } from '../../src/stores/mysql'
import type { SqlDriver, SqlResult } from '../../src/stores/sql/types'
import { checkTable, DEFAULT_TABLE, LOCK_LOST, mysql, mysqlSchema, mysqlSchemaStatements, mysqlUpgrade, postgres, postgresSchema,
  postgresSchemaStatements, postgresUpgrade } from '../../src/stores/sql/dialect'
import { hasSessions, mysqlDriver, PARK_MS, pgDriver, type SessionDriver } from '../../src/stores/sql/drivers'

/** A node-postgres pool stand-in: records every query and how its one client was released. */
function pgPool(command: (sql: string) => string = (sql) => sql) {
  const log: unknown[] = []
  const client = Object.assign(new EventEmitter(), {
    query: async (text: string, values?: unknown[]) => {
      log.push(values === undefined ? text : [text, values])
      return { rows: [{ n: 1 }], rowCount: 1, command: command(text) }
    },
    release: (err?: Error | boolean) => { log.push(['release', err instanceof Error ? err.message : err]) },
  })
  const pool = Object.assign(new EventEmitter(), {
    connect: async () => client,
    query: async (text: string, values?: unknown[]) => {
      log.push(['pool', text, values])
      return text.startsWith('SELECT') ? { rows: [{ n: 1 }], rowCount: 1 } : { rows: undefined as never, rowCount: null }
    },
  })
  return { pool, client, log }
}

/** A mysql2/promise pool stand-in. */
function mysqlPool(fail: Partial<Record<'commit' | 'rollback', Error>> = {}) {
  const log: unknown[] = []
  const conn = Object.assign(new EventEmitter(), {
    query: async (sql: string, values?: unknown) => {
      log.push([sql, values])
      return (sql.startsWith('SELECT') ? [[{ n: 1 }], []] : [{ affectedRows: 2 }, undefined]) as [unknown, unknown]
    },
    beginTransaction: async () => { log.push('BEGIN') },
    commit: async () => { log.push('COMMIT'); if (fail.commit) throw fail.commit },
    rollback: async () => { log.push('ROLLBACK'); if (fail.rollback) throw fail.rollback },
    release: () => { log.push('release') },
    destroy: () => { log.push('destroy') },
  })
  const pool = {
    getConnection: async () => conn,
    query: async (sql: string, values?: unknown) => {
      log.push(['pool', sql, values])
      return (sql.startsWith('SELECT') ? [[{ n: 1 }], []] : [{ affectedRows: 3 }, undefined]) as [unknown, unknown]
    },
  }
  return { pool, conn, log }
}

describe('SQL drivers', () => {
  describe('node-postgres', () => {
    it('numbers the placeholders, and reads rows and rowCount (none: 0)', async () => {
      const { pool, log } = pgPool()
      const driver = pgDriver(pool)
      expect(await driver.query('SELECT ? AS a, ? AS b', ['x', 2])).to.deep.equal({ rows: [{ n: 1 }], affected: 1 })
      expect(await driver.query('DELETE FROM t WHERE k IN (?, ?, ?)', [1, 2, 3])).to.deep.equal({ rows: [], affected: 0 })
      expect(await driver.query('SELECT ? AS a, ? AS b', ['y', 3])).to.deep.equal({ rows: [{ n: 1 }], affected: 1 })
      expect(log).to.deep.equal([
        ['pool', 'SELECT $1 AS a, $2 AS b', ['x', 2]],
        ['pool', 'DELETE FROM t WHERE k IN ($1, $2, $3)', [1, 2, 3]],
        ['pool', 'SELECT $1 AS a, $2 AS b', ['y', 3]],
      ])
    })

    it('takes a pool that is no EventEmitter (no listenerCount, or no on) without listening on it', () => {
      const plain = { connect: async () => expect.fail('unused'), query: async () => expect.fail('unused') }
      for (const pool of [plain, { ...plain, on: () => expect.fail('listened') }, { ...plain, listenerCount: () => 0 }]) {
        expect(() => pgDriver(pool as never)).to.not.throw()
      }
    })

    it('listens for idle connection errors only on a pool nobody listens to', () => {
      const quiet = pgPool().pool
      pgDriver(quiet)
      expect(quiet.listenerCount('error')).to.equal(1)
      expect(() => quiet.emit('error', new Error('terminating connection'))).to.not.throw()
      const heard = pgPool().pool
      heard.on('error', () => {})
      pgDriver(heard)
      expect(heard.listenerCount('error')).to.equal(1)
    })

    it('a transaction: BEGIN, numbered statements, COMMIT, and the connection back to the pool unharmed', async () => {
      const { pool, client, log } = pgPool()
      const t = await pgDriver(pool).begin()
      expect(t.tx).to.equal(client)
      expect(await t.query('UPDATE t SET a = ? WHERE k = ?', [1, 'k'])).to.deep.equal({ rows: [{ n: 1 }], affected: 1 })
      await t.commit()
      expect(log).to.deep.equal(['BEGIN', ['UPDATE t SET a = $1 WHERE k = $2', [1, 'k']], 'COMMIT', ['release', undefined]])
      expect(client.listenerCount('error'), 'its error listener removed').to.equal(0)
    })

    it('a COMMIT that PostgreSQL answers with ROLLBACK rejects, and the connection is destroyed', async () => {
      const { pool, log } = pgPool((sql) => (sql === 'COMMIT' ? 'ROLLBACK' : sql))
      const t = await pgDriver(pool).begin()
      const err = await t.commit().then(() => expect.fail('committed'), (e: Error) => e)
      expect(err.message).to.match(/COMMIT was answered ROLLBACK/)
      expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
      expect(log.at(-1)).to.deep.equal(['release', err.message])
    })

    it('a ROLLBACK gives the connection back; one the server dropped meanwhile is destroyed', async () => {
      const kept = pgPool()
      await (await pgDriver(kept.pool).begin()).rollback()
      expect(kept.log).to.deep.equal(['BEGIN', 'ROLLBACK', ['release', undefined]])
      const dropped = pgPool()
      const t = await pgDriver(dropped.pool).begin()
      dropped.client.emit('error', new Error('server closed the connection'))
      dropped.client.emit('error', new Error('a second error'))
      await t.rollback()
      expect(dropped.log.at(-1)).to.deep.equal(['release', 'server closed the connection'])
    })
  })

  it('node-postgres: a ROLLBACK that fails with something not an Error destroys the connection with a STORE_FAILED Error that carries it (what a pool\'s \'release\' listener sees)', async () => {
    const { pool, client } = pgPool()
    let released: unknown
    client.query = async (text: string) => {
      if (text === 'ROLLBACK') throw 'connection reset'
      return { rows: [], rowCount: 0, command: text }
    }
    client.release = (err?: Error | boolean) => { released = err }
    const t = await pgDriver(pool).begin()
    expect(await t.rollback().then(() => 'resolved', (e: unknown) => e)).to.equal('connection reset')
    expect(released).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect((released as Error).cause).to.equal('connection reset')
    expect((released as Error).message).to.contain('the connection failed: connection reset')
  })

  describe('node-postgres sessions (the script path)', () => {
    /** The stand-in pool of a pg that has escapeLiteral (8.8 and later): the driver then hands out sessions. */
    function escaping() {
      const stand = pgPool()
      const escapeLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`
      Object.assign(stand.pool, { Client: { prototype: { escapeLiteral } } })
      Object.assign(stand.client, { escapeLiteral })
      return stand
    }

    it('inlines null, safe integers and escaped strings, in one query; one result is one result set', async () => {
      const { pool, log } = escaping()
      const driver = pgDriver(pool)
      expect(hasSessions(driver)).to.equal(true)
      expect(hasSessions(pgDriver(pgPool().pool)), 'a pg without escapeLiteral: statement by statement').to.equal(false)
      const s = await (driver as SessionDriver<unknown>).session()
      expect(await s.script('SELECT ?, ?, ?; SELECT ?', [null, 42, "it's", undefined]))
        .to.deep.equal([{ rows: [{ n: 1 }], affected: 1, command: "SELECT NULL, 42, 'it''s'; SELECT NULL" }])
      s.release()
      expect(log).to.deep.equal(["SELECT NULL, 42, 'it''s'; SELECT NULL", ['release', undefined]])
    })

    it('a session goes back to the pool, destroyed when released with an error or when its connection failed meanwhile; its error listener goes', async () => {
      const { pool, client, log } = escaping()
      const driver = pgDriver(pool) as SessionDriver<unknown>
      const failed = await driver.session()
      failed.release(new Error('rollback failed'))
      const dropped = await driver.session()
      client.emit('error', new Error('terminated by administrator'))
      client.emit('error', new Error('a second error'))
      dropped.release()
      expect(log).to.deep.equal([['release', 'rollback failed'], ['release', 'terminated by administrator']])
      expect(client.listenerCount('error')).to.equal(0)
    })

    describe('a parked session (a claim answered done or busy, its empty transaction open)', () => {
      /** The stand-in, answering a script of several statements with one result set each, named by its statement. */
      function parking(max?: number) {
        const stand = escaping()
        if (max !== undefined) Object.assign(stand.pool, { options: { max } })
        const answer = (text: string) => ({ rows: [{ n: 1 }], rowCount: 1, command: text.split(' ')[0] })
        stand.client.query = async (text: string) => {
          stand.log.push(text)
          const statements = text.split('; ')
          return (statements.length > 1 ? statements.map(answer) : answer(text)) as never
        }
        return { ...stand, driver: pgDriver(stand.pool) as SessionDriver<unknown> }
      }
      const settled = () => new Promise((resolve) => setTimeout(resolve, PARK_MS * 4))

      it('is taken by the next session, whose first script begins with its ROLLBACK (that result dropped), in the same round trip', async () => {
        const { driver, client, log } = parking()
        ;(await driver.session()).park!()
        const next = await driver.session()
        expect(next.tx).to.equal(client)
        expect((await next.script('BEGIN; SELECT ?', ['k'])).map((r) => (r as { command?: string }).command)).to.deep.equal(['BEGIN', 'SELECT'])
        expect((await next.script('COMMIT', [])).map((r) => (r as { command?: string }).command)).to.deep.equal(['COMMIT'])
        next.release()
        await settled()
        expect(log).to.deep.equal(["ROLLBACK; BEGIN; SELECT 'k'", 'COMMIT', ['release', undefined]])
        expect(client.listenerCount('error'), 'its error listener removed').to.equal(0)
      })

      it('is rolled back on its own and given back to the pool when no session comes within PARK_MS', async () => {
        const { driver, client, log } = parking()
        ;(await driver.session()).park!()
        expect(log).to.deep.equal([])
        await settled()
        expect(log).to.deep.equal(['ROLLBACK', ['release', undefined]])
        expect(client.listenerCount('error')).to.equal(0)
        ;(await driver.session()).park!()
        await settled()
        expect(log.slice(2), 'parked again, rolled back again').to.deep.equal(['ROLLBACK', ['release', undefined]])
      })

      it('is not parked while others wait for the pool: rolled back at once, then given back for them', async () => {
        const { driver, pool, log } = parking()
        Object.assign(pool, { waitingCount: 1 })
        ;(await driver.session()).park!()
        await Promise.resolve()
        expect(log, 'before PARK_MS').to.deep.equal(['ROLLBACK', ['release', undefined]])
        Object.assign(pool, { waitingCount: 0 })
        ;(await driver.session()).park!()
        await Promise.resolve()
        expect(log.slice(2), 'nobody waiting: parked').to.deep.equal([])
        await settled()
        expect(log.slice(2)).to.deep.equal(['ROLLBACK', ['release', undefined]])
      })

      it('beyond the pool\'s max, sessions wait in line: a parked connection goes to the oldest, a released one lets the next take one from the pool', async () => {
        const { driver, pool, client, log } = parking(1)
        let connects = 0
        Object.assign(pool, { connect: async () => { connects++; return client } })
        const first = await driver.session()
        const order: string[] = []
        const second = driver.session().then((s) => { order.push('second'); return s })
        const third = driver.session().then((s) => { order.push('third'); return s })
        await settled()
        expect([order, connects], 'the two wait without asking the pool').to.deep.equal([[], 1])
        first.park!()
        const handed = await second
        expect(connects, 'the parked connection handed over').to.equal(1)
        await handed.script('BEGIN; SELECT 1', [])
        handed.release()
        const next = await third
        expect([order, connects]).to.deep.equal([['second', 'third'], 2])
        await next.script('SELECT 2', [])
        next.release()
        expect(log).to.deep.equal(['ROLLBACK; BEGIN; SELECT 1', ['release', undefined], 'SELECT 2', ['release', undefined]])
      })

      it('a session whose connection failed is destroyed when parked, not rolled back or handed along: the one waiting takes a new connection', async () => {
        const { driver, pool, client, log } = parking(1)
        let connects = 0
        Object.assign(pool, { connect: async () => { connects++; return client } })
        const first = await driver.session()
        const waiting = driver.session()
        client.emit('error', new Error('terminated by administrator'))
        first.park!()
        const next = await waiting
        expect([log, connects]).to.deep.equal([[['release', 'terminated by administrator']], 2])
        await next.script('SELECT 1', [])
        next.release()
        expect(log.slice(1), 'no ROLLBACK first on the new connection').to.deep.equal(['SELECT 1', ['release', undefined]])
      })

      it('a pool that cannot connect fails that session and frees its place in line', async () => {
        const { driver, pool, client } = parking(1)
        let fail = true
        Object.assign(pool, { connect: async () => { if (fail) throw new Error('too many clients already'); return client } })
        expect(await driver.session().then(() => 'connected', (e: Error) => e.message)).to.equal('too many clients already')
        fail = false
        ;(await driver.session()).release()
      })

      it('is destroyed instead of taken when its connection failed meanwhile, and one whose own ROLLBACK fails is destroyed', async () => {
        const { driver, client, log } = parking()
        ;(await driver.session()).park!()
        client.emit('error', new Error('terminated by administrator'))
        const next = await driver.session()
        expect(log).to.deep.equal([['release', 'terminated by administrator']])
        expect((await next.script('SELECT 1', [])).map((r) => (r as { command?: string }).command), 'a new connection: no ROLLBACK first').to.deep.equal(['SELECT'])
        next.park!()
        client.query = async () => { throw new Error('connection reset') }
        await settled()
        expect(log.at(-1)).to.deep.equal(['release', 'connection reset'])
      })
    })

    it('refuses a NUL in a string (field value) and anything but a string, a safe integer or null (field script value), sending nothing', async () => {
      const { pool, log } = escaping()
      const s = await (pgDriver(pool) as SessionDriver<unknown>).session()
      const refusal = (params: unknown[]) => s.script('SELECT ?', params).then(() => expect.fail('sent'), (e: unknown) => e as ParamError)
      const nul = await refusal(['a\0b'])
      expect(nul).to.be.instanceOf(ParamError)
      expect([nul.code, nul.field]).to.deep.equal(['INVALID_PARAM', 'value'])
      for (const value of [true, 2 ** 53, 1.5, {}]) {
        const err = await refusal([value])
        expect(err, String(value)).to.be.instanceOf(ParamError)
        expect(err.field).to.equal('script value')
      }
      expect(log).to.deep.equal([])
    })
  })

  describe('mysql2', () => {
    it('reads rows from a SELECT and affectedRows from the rest', async () => {
      const { pool, log } = mysqlPool()
      const driver = mysqlDriver(pool)
      expect(await driver.query('SELECT ?', [1])).to.deep.equal({ rows: [{ n: 1 }], affected: 0 })
      expect(await driver.query('DELETE FROM t WHERE k = ?', ['k'])).to.deep.equal({ rows: [], affected: 3 })
      expect(log).to.deep.equal([['pool', 'SELECT ?', [1]], ['pool', 'DELETE FROM t WHERE k = ?', ['k']]])
    })

    it('a transaction: beginTransaction, statements, commit, and the connection released', async () => {
      const { pool, conn, log } = mysqlPool()
      const t = await mysqlDriver(pool).begin()
      expect(t.tx).to.equal(conn)
      expect(await t.query('UPDATE t SET a = ?', [1])).to.deep.equal({ rows: [], affected: 2 })
      await t.commit()
      expect(log).to.deep.equal(['BEGIN', ['UPDATE t SET a = ?', [1]], 'COMMIT', 'release'])
    })

    it('a failed COMMIT or ROLLBACK rejects and destroys the connection; so does a ROLLBACK after the server dropped it', async () => {
      for (const step of ['commit', 'rollback'] as const) {
        const { pool, log } = mysqlPool({ [step]: new Error(`${step} lost`) })
        const t = await mysqlDriver(pool).begin()
        await t[step]().then(() => expect.fail('resolved'), (e: Error) => expect(e.message).to.equal(`${step} lost`))
        expect(log.at(-1), step).to.equal('destroy')
      }
      const { pool, conn, log } = mysqlPool()
      const t = await mysqlDriver(pool).begin()
      conn.emit('error', new Error('PROTOCOL_CONNECTION_LOST'))
      await t.rollback()
      expect(log).to.deep.equal(['BEGIN', 'ROLLBACK', 'destroy'])
    })
  })
})

describe('SQL dialects', () => {
  it('table names: plain identifiers of at most 50 characters, optionally schema-qualified; the default without one', () => {
    expect(checkTable(undefined, 'x')).to.equal(DEFAULT_TABLE)
    for (const ok of ['t', '_t9', 'a'.repeat(50), `${'s'.repeat(50)}.${'t'.repeat(50)}`, 'shop.gat']) expect(checkTable(ok, 'x')).to.equal(ok)
    for (const bad of ['', '9t', 'a'.repeat(51), 'a.b.c', '.t', 't.', 'a-b', 't ', 'a;b', 5, null]) {
      expect(() => checkTable(bad, 'PostgresStore'), String(bad)).to.throw(ConfigError, /PostgresStore: table must be a plain SQL name/)
    }
  })

  it('the schema functions name themselves when they refuse a table name', () => {
    const calls = { 'postgresSchema()': postgresSchema, 'postgresSchemaStatements()': postgresSchemaStatements, 'mysqlSchema()': mysqlSchema,
      'mysqlSchemaStatements()': mysqlSchemaStatements, 'postgresUpgrade()': postgresUpgrade, 'mysqlUpgrade()': mysqlUpgrade }
    for (const [name, call] of Object.entries(calls)) {
      expect(() => call('a-b'), name).to.throw(ConfigError, `${MESSAGE_PREFIX}${name}: table must be a plain SQL name`)
    }
  })

  it('mysqlUpgrade(): the five upgrade statements, then the two procedures, and no CREATE TABLE', () => {
    const upgrade = mysqlUpgrade('t')
    expect(upgrade.slice(0, 5)).to.deep.equal([
      'ALTER TABLE t MODIFY settle_key VARBINARY(764) NOT NULL',
      'ALTER TABLE t ADD COLUMN /*M! IF NOT EXISTS */ memo TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
      'ALTER TABLE t ADD COLUMN /*M! IF NOT EXISTS */ watched BOOLEAN NOT NULL DEFAULT false',
      'ALTER TABLE t ADD COLUMN /*M! IF NOT EXISTS */ note TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
      'ALTER TABLE t_unsettled MODIFY unsettled_key VARBINARY(764) NOT NULL',
    ])
    expect(upgrade.slice(5).map((statement) => statement.split('(')[0])).to.deep.equal(['CREATE PROCEDURE IF NOT EXISTS t_claim_v2', 'CREATE PROCEDURE IF NOT EXISTS t_finish_v2'])
  })

  it('postgresUpgrade(): the three column upgrades, then the claim function, and no CREATE TABLE', () => {
    const upgrade = postgresUpgrade('t')
    expect(upgrade.slice(0, 3)).to.deep.equal(postgres('t').upgrade)
    expect(upgrade.slice(3).map((statement) => statement.split('(')[0])).to.deep.equal(['CREATE OR REPLACE FUNCTION t_claim_v2'])
  })

  it('a table that cannot be created names the DDL export to run in a migration: postgresSchema() or mysqlSchema()', async () => {
    const denied = { query: async () => { throw new Error('permission denied') }, begin: async () => expect.fail('no table') }
    for (const [store, schema] of [[new PostgresStore({ driver: denied, purgeEveryMs: false }), 'postgresSchema()'], [new MysqlStore({ driver: denied, purgeEveryMs: false }), 'mysqlSchema()']] as const) {
      const err = await store.settle('20110698:paid:S9', async () => {}).then(() => expect.fail('resolved'), (e: Error) => e)
      expect(err.message, schema).to.contain(`run the DDL from ${schema} in a migration and pass createTable: false`)
    }
  })

  it('a busy row lock: 55P03 on PostgreSQL; 3572 (MySQL) or 1205 (MariaDB) on MySQL; nothing else', () => {
    const pg = postgres('t')
    const my = mysql('t')
    expect(pg.isLockBusy({ code: '55P03' })).to.equal(true)
    for (const other of [{ code: '40P01' }, { errno: 3572 }, null, undefined, 'x']) expect(pg.isLockBusy(other), JSON.stringify(other)).to.equal(false)
    expect(my.isLockBusy({ errno: 3572 })).to.equal(true)
    expect(my.isLockBusy({ errno: 1205 })).to.equal(true)
    for (const other of [{ errno: 1213 }, { code: '55P03' }, { errno: '1205' }, null, undefined]) expect(my.isLockBusy(other), JSON.stringify(other)).to.equal(false)
  })

  it('DDL: the routines first (PostgreSQL: the claim function; MySQL: the two procedures), then the settlement table, the ledger table and an index on each (MySQL: inside the tables), one statement at a time', () => {
    for (const [d, routines, tables] of [[postgres('shop.pay'), 1, 4], [mysql('shop.pay'), 2, 2]] as const) {
      expect(d.ddl, d.name).to.have.length(routines + tables)
      for (const statement of d.ddl.slice(0, routines)) expect(statement, d.name).to.match(/^CREATE (OR REPLACE FUNCTION|PROCEDURE IF NOT EXISTS) shop\.pay_(claim|finish)_v2\(/)
      for (const statement of d.ddl.slice(routines)) expect(statement, d.name).to.match(/^CREATE (TABLE|INDEX) IF NOT EXISTS /)
      for (const statement of d.ddl) expect(statement, d.name).not.to.match(/;\s*$/)
      expect(d.ddl.join('\n'), d.name).to.contain('shop.pay_unsettled').and.contain('pay_touched_at').and.not.contain('shop.pay_touched_at')
    }
  })

  it('a claim is read from the row its routine answered, where each dialect finds it; an answer without a known status fails as STORE_FAILED', () => {
    const sets = (d: ReturnType<typeof postgres>, row?: Record<string, unknown>): SqlResult[] => {
      const answer = { rows: row ? [row] : [], affected: 0 }
      // PostgreSQL's script answers BEGIN first, then the function's row; MySQL's CALL its row first.
      return d.name === 'postgres' ? [{ rows: [], affected: 0 }, answer] : [answer, { rows: [], affected: 0 }]
    }
    for (const d of [postgres('t'), mysql('t')]) {
      const read = (row?: Record<string, unknown>) => d.script.readClaim(sets(d, row))
      expect(read({ status: 'done', memo: 'm', watched: 1 }), d.name).to.deep.equal({ status: 'done', memo: 'm', watched: true })
      expect(read({ status: 'done', memo: null, watched: false }), d.name).to.deep.equal({ status: 'done', memo: null, watched: false })
      expect(read({ status: 'fresh', tx: '77' }), d.name).to.deep.equal({ status: 'claimed', fresh: true, attempts: 0, tx: '77', watched: false, note: null })
      expect(read({ status: 'claimed', attempts: '2', watched: true, note: 'n', tx: 1 }), d.name)
        .to.deep.equal({ status: 'claimed', fresh: false, attempts: 2, tx: 1, watched: true, note: 'n' })
      expect(read({ status: 'claimed', attempts: 0, watched: 0, note: null, tx: 1 }), d.name)
        .to.deep.equal({ status: 'claimed', fresh: false, attempts: 0, tx: 1, watched: false, note: null })
      expect(read({ status: 'busy' }), d.name).to.deep.equal({ status: 'busy' })
      expect(read({ status: 'raced' }), d.name).to.deep.equal({ status: 'raced' })
      for (const row of [undefined, { status: 'other' }]) {
        const err = (() => { try { read(row) } catch (e) { return e } })()
        expect(err, d.name).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
        expect((err as Error).message, d.name).to.contain(row ? 'status "other"' : 'no row').and.contain('t_claim_v2')
      }
    }
  })

  it('purge, removals and deadline moves carry one placeholder per key', () => {
    const d = postgres('t')
    expect(d.purge(3)).to.match(/IN \(\?, \?, \?\)$/)
    expect(d.ledger.resolve(1)).to.match(/IN \(\?\)$/)
    expect(d.ledger.moveDeadlines(2)).to.match(/IN \(\?, \?\)$/)
  })
})

/**
 * A driver whose statements answer from `answer` (by the start of the SQL), recording every
 * statement and how each transaction ended: the SQL store's failure paths, without a database.
 */
function scripted(answer: (sql: string, params: readonly unknown[]) => SqlResult | Error, commitFails?: Error,
  more: { beginFails?: Error; purgeEveryMs?: number | false } = {}) {
  const log: string[] = []
  const run = async (sql: string, params: readonly unknown[]) => {
    log.push(sql.split(' ').slice(0, 2).join(' '))
    const result = answer(sql, params)
    if (result instanceof Error) throw result
    return result
  }
  const driver: SqlDriver<object> = {
    query: (sql, params) => run(sql, params),
    begin: async () => {
      if (more.beginFails) throw more.beginFails
      return {
        tx: {}, query: (sql, params) => run(sql, params),
        commit: async () => {
          log.push('COMMIT')
          if (commitFails) throw commitFails
        },
        rollback: async () => { log.push('ROLLBACK') },
      }
    },
  }
  return { store: new PostgresStore({ driver, createTable: false, purgeEveryMs: more.purgeEveryMs ?? false }), log }
}
const rows = (...r: Record<string, unknown>[]): SqlResult => ({ rows: r, affected: 0 })

describe('SQL store failure paths (a stand-in driver)', () => {
  it('a ledger take that fails rolls its transaction back: STORE_FAILED', async () => {
    const { store, log } = scripted((sql) => (sql.startsWith('SELECT record') ? new Error('relation does not exist') : rows()))
    const err = await store.takeDueUnsettled(1000, 10, 100).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect((err as Error).message).to.equal(`${MESSAGE_PREFIX}SQL store takeDueUnsettled failed: relation does not exist`)
    expect(log).to.deep.equal(['SELECT record,', 'ROLLBACK'])
  })

  describe('each step that fails is STORE_FAILED naming the step, with the database\'s error as the cause; an open transaction is rolled back', () => {
    const KEY = '20110698:paid:S1'
    // Statements by their start (pg dialect): the unlocked read, the insert of a missing row, the lock, the done-marker, the note.
    const isRead = (sql: string) => sql.startsWith('SELECT done_at, attempts, memo, watched FROM')
    const isInsert = (sql: string) => sql.includes('DO NOTHING')
    const isLock = (sql: string) => sql.includes('FOR UPDATE NOWAIT')
    const cases: Array<{ step: string; call: 'settle' | 'peek' | 'watch' | 'resolve' | 'list' | 'purge'; fails: (sql: string) => boolean; log: string[] }> = [
      { step: 'read', call: 'settle', fails: isRead, log: ['SELECT done_at,'] },
      { step: 'insert', call: 'settle', fails: isInsert, log: ['SELECT done_at,', 'INSERT INTO'] },
      { step: 'lock', call: 'settle', fails: isLock, log: ['SELECT done_at,', 'INSERT INTO', 'SELECT done_at,', 'ROLLBACK'] },
      { step: 'done-marker', call: 'settle', fails: (sql) => sql.startsWith('UPDATE gat_settlements SET done_at'), log: ['SELECT done_at,', 'INSERT INTO', 'SELECT done_at,', 'UPDATE gat_settlements', 'ROLLBACK'] },
      { step: 'insert', call: 'peek', fails: isInsert, log: ['SELECT done_at,', 'INSERT INTO', 'ROLLBACK'] },
      { step: 'note', call: 'peek', fails: (sql) => sql.startsWith('UPDATE gat_settlements SET note'), log: ['SELECT done_at,', 'INSERT INTO', 'SELECT done_at,', 'UPDATE gat_settlements', 'ROLLBACK'] },
      { step: 'read', call: 'peek', fails: isRead, log: ['SELECT done_at,'] },
      { step: 'watchUnsettled', call: 'watch', fails: (sql) => sql.startsWith('INSERT INTO gat_settlements '), log: ['INSERT INTO'] },
      { step: 'watchUnsettled', call: 'watch', fails: (sql) => sql.startsWith('INSERT INTO gat_settlements_unsettled'), log: ['INSERT INTO', 'INSERT INTO'] },
      { step: 'resolveUnsettled', call: 'resolve', fails: (sql) => sql.startsWith('UPDATE'), log: ['UPDATE gat_settlements'] },
      { step: 'resolveUnsettled', call: 'resolve', fails: (sql) => sql.startsWith('DELETE'), log: ['UPDATE gat_settlements', 'DELETE FROM'] },
      { step: 'listUnsettled', call: 'list', fails: (sql) => sql.startsWith('SELECT record'), log: ['SELECT record,'] },
      { step: 'purge', call: 'purge', fails: (sql) => sql.startsWith('SELECT settle_key'), log: ['SELECT settle_key'] },
      { step: 'purge', call: 'purge', fails: (sql) => sql.startsWith('DELETE'), log: ['SELECT settle_key', 'DELETE FROM'] },
    ]
    for (const { step, call, fails, log: expected } of cases) {
      it(`${call}: ${step}`, async () => {
        const cause = new Error('database says no')
        const { store, log } = scripted((sql) => {
          if (fails(sql)) return cause
          if (isRead(sql)) return rows()
          if (isLock(sql)) return rows({ done_at: null, attempts: 0, tx: 1 })
          if (sql.startsWith('SELECT settle_key')) return rows({ settle_key: 'old' })
          return { rows: [], affected: 1 }
        })
        const calls = {
          settle: () => store.settle(KEY, async () => {}),
          peek: () => store.peek(KEY, 'a note'),
          watch: () => store.watchUnsettled({ key: KEY, appId: 'app', outerTradeNo: 'O1', totalAmount: '1.00', buyerOpenId: 'b', reason: 'r', tradeNo: null, totalFen: 100, since: 1, deadline: 5 } as never),
          resolve: () => store.resolveUnsettled(KEY),
          list: () => store.listUnsettled(5),
          purge: () => store.purge(),
        }
        const run = calls[call]()
        const err = await run.then(() => expect.fail('resolved'), (e: unknown) => e)
        expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
        expect((err as Error).message).to.equal(`${MESSAGE_PREFIX}SQL store ${step} failed: database says no`)
        expect((err as Error).cause).to.equal(cause)
        expect(log).to.deep.equal(expected)
      })
    }
  })

  it('a done-marker that marks no row (the transaction that took the lock had ended) rolls back and fails: nothing is committed', async () => {
    const { store, log } = scripted((sql) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: null, attempts: 0, tx: 1 }) : rows()))
    const err = await store.settle('20110698:paid:S2', async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect((err as Error).message).to.equal(`${MESSAGE_PREFIX}SQL store done-marker failed: ${LOCK_LOST}`)
    expect(log).to.deep.equal(['SELECT done_at,', 'INSERT INTO', 'SELECT done_at,', 'UPDATE gat_settlements', 'ROLLBACK'])
  })

  it('peek of a row purged between its insert and its lock: open, not watched, and nothing kept', async () => {
    const { store, log } = scripted(() => rows())
    expect(await store.peek('20110698:paid:S3', 'a note')).to.deep.equal({ status: 'open', watched: false })
    expect(log).to.deep.equal(['SELECT done_at,', 'INSERT INTO', 'SELECT done_at,', 'ROLLBACK'])
  })

  it('a driver\'s own STORE_FAILED (a COMMIT answered ROLLBACK) is said with its step; its other errors (a ParamError) keep their code', async () => {
    const answer = (sql: string) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: null, attempts: 0, tx: 1 }) : { rows: [], affected: 1 })
    const rolledBack = scripted(answer, new GuanaitongError('COMMIT was answered ROLLBACK', 'STORE_FAILED'))
    const err = await rolledBack.store.settle('20110698:paid:S4', async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect((err as Error).message).to.equal(`${MESSAGE_PREFIX}SQL store commit failed: COMMIT was answered ROLLBACK`)
    const refused = new ParamError('value', 'cannot hold NUL')
    const param = scripted(() => refused)
    expect(await param.store.settle('20110698:paid:S5', async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)).to.equal(refused)
  })

  it('the script path: a finish whose COMMIT is answered ROLLBACK is STORE_FAILED, said as the done-marker\'s failure', async () => {
    const scripts: string[] = []
    const driver: SessionDriver<object> = {
      query: async () => rows(),
      begin: async () => expect.fail('the script path begins no transaction of its own'),
      session: async () => ({
        tx: {},
        release: () => { scripts.push('release') },
        script: async (sql) => {
          scripts.push(sql.split(' ')[0])
          // The claim: BEGIN, then the claim function's row (fresh: its tx).
          if (sql.startsWith('BEGIN')) return [rows(), rows({ status: 'fresh', tx: '7' })]
          if (sql.startsWith('SELECT 1 /')) return [rows({ ours: 1 }), { rows: [], affected: 0, command: 'ROLLBACK' }]
          return [rows()]
        },
      }),
    }
    const store = new PostgresStore({ driver, createTable: false, purgeEveryMs: false })
    const err = await store.settle('20110698:paid:S6', async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect((err as Error).message).to.equal(`${MESSAGE_PREFIX}SQL store done-marker failed: COMMIT was answered ROLLBACK: the transaction was rolled back`)
    expect(scripts).to.deep.equal(['BEGIN;', 'SELECT', 'ROLLBACK', 'release'])
  })

  it('a BEGIN or a COMMIT that fails is STORE_FAILED naming it (settle, peek, takeDueUnsettled)', async () => {
    const answer = (sql: string) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: null, attempts: 0, tx: 1 }) : { rows: [], affected: 1 })
    const failing = new Error('connection refused')
    const begin = scripted(answer, undefined, { beginFails: failing }).store
    const commit = scripted(answer, failing).store
    const runs: Array<[string, () => Promise<unknown>]> = [
      ['begin', () => begin.settle('20110698:paid:B1', async () => {})],
      ['begin', () => begin.peek('20110698:paid:B1', 'n')],
      ['begin', () => begin.takeDueUnsettled(1000, 10, 100)],
      ['commit', () => commit.peek('20110698:paid:B1', 'n')],
      ['commit', () => commit.takeDueUnsettled(1000, 10, 100)],
    ]
    for (const [step, run] of runs) {
      const err = await run().then(() => expect.fail('resolved'), (e: unknown) => e)
      expect((err as Error).message, step).to.equal(`${MESSAGE_PREFIX}SQL store ${step} failed: connection refused`)
    }
  })

  it('refuses a key, memo or note that is not text or holds NUL, naming the field, before anything runs', async () => {
    const { store, log } = scripted(() => rows())
    const field = async (run: () => Promise<unknown>) => {
      const err = await run().then(() => expect.fail('resolved'), (e: unknown) => e)
      expect(err).to.be.instanceOf(ParamError)
      return (err as ParamError).field
    }
    expect(await field(() => store.settle('20110698:paid:\0', async () => {}))).to.equal('key')
    expect(await field(() => store.settle('20110698:paid:N1', async () => {}, 'a\0b'))).to.equal('memo')
    expect(await field(() => store.settle('20110698:paid:N1', async () => {}, 5 as never))).to.equal('memo')
    expect(await field(() => store.peek('20110698:paid:\0'))).to.equal('key')
    expect(await field(() => store.peek('20110698:paid:N1', 'a\0b'))).to.equal('note')
    expect(log).to.deep.equal([])
  })

  it('a key is measured in characters: 191 four-byte characters pass, 192 do not', async () => {
    const { store } = scripted((sql) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: null, attempts: 0, tx: 1 }) : { rows: [], affected: 1 }))
    expect(await store.settle('😀'.repeat(191), async () => {})).to.include({ status: 'completed' })
    const err = await store.settle('😀'.repeat(192), async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(ParamError).with.property('field', 'key')
  })

  it('the statement path: a held row is busy and runs nothing; the attempt is the count plus one', async () => {
    const busy = scripted((sql) => (sql.includes('FOR UPDATE NOWAIT') ? Object.assign(new Error('locked'), { code: '55P03' }) : rows()))
    expect(await busy.store.settle('20110698:paid:A1', async () => expect.fail('ran'))).to.deep.equal({ status: 'busy' })
    const attempts: number[] = []
    const counted = scripted((sql) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: null, attempts: 2, tx: 1 }) : { rows: [], affected: 1 }))
    await counted.store.settle('20110698:paid:A2', async (_tx, attempt) => { attempts.push(attempt) })
    expect(attempts).to.deep.equal([3])
  })

  it('peek: a done row is answered from the read alone, with its memo or without one; a busy row is not watched unless read so', async () => {
    for (const [memo, expected] of [['m', { status: 'done', memo: 'm', watched: false }], [null, { status: 'done', watched: false }]] as const) {
      const { store, log } = scripted(() => rows({ done_at: 5, attempts: 1, memo, watched: 0 }))
      expect(await store.peek('20110698:paid:P1')).to.deep.equal(expected)
      expect(log).to.deep.equal(['SELECT done_at,'])
    }
    const busyInsert = scripted((sql) => (sql.includes('DO NOTHING') ? Object.assign(new Error('lock timeout'), { code: '55P03' }) : rows()))
    expect(await busyInsert.store.peek('20110698:paid:P2')).to.deep.equal({ status: 'busy', watched: false })
    const busyLock = scripted((sql) => (sql.includes('FOR UPDATE NOWAIT') ? Object.assign(new Error('locked'), { code: '55P03' }) : rows()))
    expect(await busyLock.store.peek('20110698:paid:P3')).to.deep.equal({ status: 'busy', watched: false })
  })

  it('purge deletes in batches of 1000 until a batch is short; none to delete sends no DELETE', async () => {
    const batches = [1000, 3]
    const { store, log } = scripted((sql, params) => {
      if (sql.startsWith('SELECT settle_key')) return rows(...Array.from({ length: batches.shift() ?? 0 }, (_, i) => ({ settle_key: `k${i}` })))
      return { rows: [], affected: params.length - 1 }
    })
    expect(await store.purge()).to.equal(1003)
    expect(log).to.deep.equal(['SELECT settle_key', 'DELETE FROM', 'SELECT settle_key', 'DELETE FROM'])
    const none = scripted(() => rows())
    expect(await none.store.purge()).to.equal(0)
    expect(none.log).to.deep.equal(['SELECT settle_key'])
  })

  it('the lazy purge runs after the first settlement, then not again within purgeEveryMs; never with false', async () => {
    const answer = (sql: string) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: null, attempts: 0, tx: 1 }) : { rows: [], affected: 1 })
    const purges = (log: string[]) => log.filter((l) => l === 'SELECT settle_key').length
    for (const [purgeEveryMs, expected] of [[undefined, 1], [60_000, 1], [false, 0]] as const) {
      const { store, log } = scripted(answer, undefined, { purgeEveryMs: purgeEveryMs as number | false })
      if (purgeEveryMs === undefined) Object.assign(store, { purgeEveryMs: 10 * 60 * 1000 })
      for (const n of [1, 2, 3]) await store.settle(`20110698:paid:L${n}`, async () => {})
      await new Promise((resolve) => setTimeout(resolve, 10))
      expect(purges(log), String(purgeEveryMs)).to.equal(expected)
    }
    const byDefault = new PostgresStore({ driver: { query: async () => rows(), begin: async () => expect.fail('unused') }, createTable: false })
    expect((byDefault as unknown as { purgeEveryMs: unknown }).purgeEveryMs).to.equal(10 * 60 * 1000)
  })

  it('an option error names the class: new PostgresStore()', () => {
    expect(() => new PostgresStore({} as never)).to.throw(ConfigError, 'new PostgresStore()')
  })

  describe('the script path (a stand-in session driver)', () => {
    /** A store over a session driver whose scripts answer from `script` and unlocked statements from `query`; `log` holds each script's first word and each release. */
    function sessioned(kind: 'postgres' | 'mysql', script: (sql: string) => SqlResult[] | Error | null, query: (sql: string, params: readonly unknown[]) => SqlResult | Error = () => rows()) {
      const log: unknown[] = []
      const driver: SessionDriver<object> = {
        query: async (sql, params) => {
          log.push(`query ${sql.split(' ')[0]}`)
          const result = query(sql, params)
          if (result instanceof Error) throw result
          return result
        },
        begin: async () => expect.fail('the script path begins no transaction of its own'),
        session: async () => ({
          tx: {},
          release: (broken?: unknown) => { log.push(broken === undefined ? 'release' : ['release', (broken as Error).message]) },
          script: async (sql) => {
            log.push(sql.split(' ')[0])
            const result = script(sql)
            if (result === null || result instanceof Error) throw result
            return result
          },
        }),
      }
      const options = { driver, createTable: false, purgeEveryMs: false } as const
      return { store: kind === 'postgres' ? new PostgresStore(options) : new MysqlStore(options), log }
    }
    const fail = (message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), fields)
    const settle = (store: { settle: PostgresStore<object>['settle'] }, key = '20110698:paid:R1') =>
      store.settle(key, async () => {}).then((r): any => r, (e: unknown): any => e)

    it('PostgreSQL, raced (not done when read, not lockable as not done): the row read again decides, done or vanished', async () => {
      // BEGIN, then the claim function's row: the row was there, not done, and not lockable as not done.
      const raced = (sql: string) => (sql.startsWith('BEGIN') ? [rows(), rows({ status: 'raced' })] : [rows()])
      const params: unknown[] = []
      const done = sessioned('postgres', raced, (_sql, p) => { params.push(p); return rows({ done_at: 5, memo: 'm', watched: false }) })
      expect(await settle(done.store)).to.deep.equal({ status: 'done', memo: 'm', watched: false })
      expect(params).to.deep.equal([['20110698:paid:R1']])
      // The ROLLBACK is not waited for: the read may pass it.
      expect(done.log).to.have.members(['BEGIN;', 'ROLLBACK', 'release', 'query SELECT'])
      const gone = sessioned('postgres', raced, () => rows())
      const vanished = await settle(gone.store)
      expect(vanished).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
      expect(vanished.message).to.contain('vanished before it was locked')
      const unreadable = await settle(sessioned('postgres', raced, () => new Error('server gone')).store)
      expect(unreadable.message).to.equal(`${MESSAGE_PREFIX}SQL store read failed: server gone`)
    })

    it('a session that cannot be had (the pool cannot connect): STORE_FAILED naming connect', async () => {
      const driver: SessionDriver<object> = {
        query: async () => rows(),
        begin: async () => expect.fail('unused'),
        session: async () => { throw new Error('too many clients already') },
      }
      const err = await settle(new PostgresStore({ driver, createTable: false, purgeEveryMs: false }))
      expect(err.message).to.equal(`${MESSAGE_PREFIX}SQL store connect failed: too many clients already`)
    })

    it('MySQL, a claim that fails: busy (1205) sends no ROLLBACK; any other failure rolls back, and a missing procedure (1305) says to run mysqlUpgrade', async () => {
      const busy = sessioned('mysql', () => fail('Lock wait timeout exceeded', { errno: 1205 }))
      expect(await settle(busy.store)).to.deep.equal({ status: 'busy' })
      expect(busy.log).to.deep.equal(['CALL', 'release'])
      const deadlock = sessioned('mysql', (sql) => (sql.startsWith('CALL') ? fail('Deadlock found', { errno: 1213 }) : [rows()]))
      expect((await settle(deadlock.store)).message).to.equal(`${MESSAGE_PREFIX}SQL store claim failed: Deadlock found`)
      expect(deadlock.log).to.deep.equal(['CALL', 'ROLLBACK', 'release'])
      const missing = sessioned('mysql', (sql) => (sql.startsWith('CALL') ? fail('PROCEDURE gat_settlements_claim_v2 does not exist', { errno: 1305 }) : [rows()]))
      expect((await settle(missing.store)).message)
        .to.equal(`${MESSAGE_PREFIX}SQL store claim (run the statements of mysqlUpgrade('gat_settlements')) failed: PROCEDURE gat_settlements_claim_v2 does not exist`)
    })

    it('PostgreSQL, a claim that fails: a missing claim function (42883) says to run postgresUpgrade, any other failure says only what failed', async () => {
      const failing = (err: Error) => sessioned('postgres', (sql) => (sql.startsWith('BEGIN') ? err : [rows()])).store
      expect((await settle(failing(fail('function gat_settlements_claim_v2 does not exist', { code: '42883' })))).message)
        .to.equal(`${MESSAGE_PREFIX}SQL store claim (run the statements of postgresUpgrade('gat_settlements')) failed: function gat_settlements_claim_v2 does not exist`)
      expect((await settle(failing(fail('deadlock detected', { code: '40P01' })))).message).to.equal(`${MESSAGE_PREFIX}SQL store claim failed: deadlock detected`)
    })

    it('a ROLLBACK that fails destroys the session\'s connection (released with the error)', async () => {
      const { store, log } = sessioned('mysql', (sql) => (sql.startsWith('CALL') ? fail('Deadlock found', { errno: 1213 }) : new Error('connection lost')))
      await settle(store)
      expect(log).to.deep.equal(['CALL', 'ROLLBACK', ['release', 'connection lost']])
    })

    it('MySQL, a finish that fails: the procedure\'s SIGNAL (45000) is the lock lost, anything else is said as it is', async () => {
      const claimed = [{ rows: [{ status: 'fresh', tx: 1 }], affected: 0 }]
      const finishing = (failure: unknown) => sessioned('mysql', (sql) => (sql.includes('claim_v2') ? claimed : sql.includes('finish_v2') ? failure as Error : [rows()]))
      const lost = await settle(finishing(fail('the transaction that took the lock had ended', { sqlState: '45000' })).store)
      expect(lost.message).to.equal(`${MESSAGE_PREFIX}SQL store done-marker failed: ${LOCK_LOST}`)
      const deadlock = await settle(finishing(fail('Deadlock found', { errno: 1213, sqlState: '40001' })).store)
      expect(deadlock.message).to.equal(`${MESSAGE_PREFIX}SQL store done-marker failed: Deadlock found`)
      const nothing = await settle(finishing(null).store)
      expect(nothing).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    })

    it('PostgreSQL, a lost fresh claim whose undoing fails: STORE_FAILED naming the done-marker', async () => {
      const fresh = [rows(), rows({ status: 'fresh', tx: '7' })]
      const { store } = sessioned('postgres', (sql) => (sql.startsWith('BEGIN') ? fresh : sql.startsWith('SELECT 1') ? fail('division by zero', { code: '22012' }) : [rows()]),
        () => new Error('server gone'))
      expect((await settle(store)).message).to.equal(`${MESSAGE_PREFIX}SQL store done-marker failed: server gone`)
    })
  })

  describe('a schema that cannot be brought to this version\'s shape (createTable: true)', () => {
    /** Tables found in no shape (the probe fails), CREATE ... IF NOT EXISTS passing, each ALTER of the upgrade answered by `alter`. */
    let creates = 0
    const unshaped = (alter: () => SqlResult | Error) => new PostgresStore({
      purgeEveryMs: false,
      driver: {
        query: async (sql) => {
          if (sql.startsWith('CREATE')) creates++
          if (sql.includes('SELECT memo, watched, note FROM')) throw new Error('column "note" does not exist')
          const result = sql.startsWith('ALTER') ? alter() : rows()
          if (result instanceof Error) throw result
          return result
        },
        begin: async () => expect.fail('no settlement runs without its table'),
      },
    })

    it('an upgrade statement that fails: that failure is the cause', async () => {
      const denied = new Error('must be owner of table gat_settlements')
      const started = Date.now()
      const err = await unshaped(() => denied).settle('20110698:paid:S7', async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)
      // Three passes, 50 then 100 ms apart.
      expect(creates, 'CREATE statements: five a pass (the claim function, two tables, two indexes)').to.equal(15)
      expect(Date.now() - started).to.be.at.least(140)
      expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
      expect((err as Error).message).to.contain('could not create the settlement table gat_settlements: must be owner of table gat_settlements. Grant CREATE')
      expect((err as Error).cause).to.equal(denied)
    })

    it('upgrade statements that pass and a shape still wrong: a STORE_FAILED that says so is the cause', async () => {
      const err = await unshaped(() => rows()).settle('20110698:paid:S8', async () => {}).then(() => expect.fail('resolved'), (e: unknown) => e)
      expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
      const cause = (err as Error).cause
      expect(cause).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
      expect((cause as Error).message).to.equal(`${MESSAGE_PREFIX}gat_settlements is still not in this version's shape after the upgrade`)
    })
  })

  it('a failed attempt is counted by one statement after the ROLLBACK; when it cannot be written (busy), the work\'s error stands', async () => {
    const { store, log } = scripted((sql) => {
      if (sql.startsWith('SELECT done_at, attempts, memo, watched FROM')) return rows({ done_at: null, attempts: 0 })
      if (sql.includes('FOR UPDATE NOWAIT')) return rows({ done_at: null, attempts: 0, tx: 1 })
      if (sql.includes('attempts + 1')) return Object.assign(new Error('busy'), { code: '55P03' })
      return rows()
    })
    const thrown = new Error('constraint')
    const err = await store.settle('20110698:paid:O1', async () => { throw thrown }).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.equal(thrown)
    expect(log).to.deep.equal(['SELECT done_at,', 'SELECT done_at,', 'ROLLBACK', 'INSERT INTO'])
  })

  it('a row that turned done between the read and the lock: status() is done, settle() a duplicate', async () => {
    const { store } = scripted((sql) => (sql.includes('FOR UPDATE NOWAIT') ? rows({ done_at: 5, attempts: 1, tx: 1 }) : rows({ done_at: null, attempts: 1 })))
    expect(await store.status('20110698:paid:O2')).to.equal('done')
    expect(await store.settle('20110698:paid:O2', async () => { throw new Error('must not run') })).to.include({ status: 'done' })
    const open = scripted(() => rows({ done_at: null, attempts: 1, tx: 1 }))
    expect(await open.store.status('20110698:paid:O2')).to.equal('open')
  })

  it('a failed attempt whose count fails (the connection lost): the work\'s error stands', async () => {
    let counts = 0
    const { store } = scripted((sql) => {
      if (!sql.includes('attempts + 1')) return rows({ done_at: null, attempts: 0, tx: 1, sql })
      counts++
      return new Error('connection lost')
    })
    const thrown = new Error('constraint')
    const err = await store.settle('20110698:paid:O4', async () => { throw thrown }).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.equal(thrown)
    expect(counts).to.equal(1)
  })

  it('a row purged between the insert and the lock: STORE_FAILED, nothing run', async () => {
    const { store } = scripted(() => rows())
    let ran = false
    const err = await store.settle('20110698:paid:O3', async () => { ran = true }).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect(ran).to.equal(false)
  })
})
