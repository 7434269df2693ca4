/**
 * The SQL stores' drivers and dialect checks on their own (src/stores/sql/drivers.ts, dialect.ts),
 * against recording stand-ins for a node-postgres and a mysql2 pool: what each statement and
 * answer becomes, and when a connection goes back to its pool or is destroyed. The stores on
 * real databases: sql-store.test.ts, sql-conformance.test.ts.
 */
import { expect } from 'chai'
import { EventEmitter } from 'node:events'
import { ConfigError, GuanaitongError } from '../../src/kernel/errors'
import { PostgresStore } from '../../src/stores/postgres'
import type { SqlDriver, SqlResult } from '../../src/stores/sql/types'
import { checkTable, DEFAULT_TABLE, mysql, postgres } from '../../src/stores/sql/dialect'
import { mysqlDriver, pgDriver } from '../../src/stores/sql/drivers'

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
function scripted(answer: (sql: string) => SqlResult | Error) {
  const log: string[] = []
  const run = async (sql: string) => {
    log.push(sql.split(' ').slice(0, 2).join(' '))
    const result = answer(sql)
    if (result instanceof Error) throw result
    return result
  }
  const driver: SqlDriver<object> = {
    query: (sql) => run(sql),
    begin: async () => ({
      tx: {}, query: (sql) => run(sql),
      commit: async () => { log.push('COMMIT') }, rollback: async () => { log.push('ROLLBACK') },
    }),
  }
  return { store: new PostgresStore({ driver, createTable: false, purgeEveryMs: false }), log }
}
const rows = (...r: Record<string, unknown>[]): SqlResult => ({ rows: r, affected: 0 })

describe('SQL store failure paths (a stand-in driver)', () => {
  it('a ledger take that fails rolls its transaction back: STORE_FAILED', async () => {
    const { store, log } = scripted((sql) => (sql.startsWith('SELECT record') ? new Error('relation does not exist') : rows()))
    const err = await store.takeDueUnsettled(1000, 10, 100).then(() => expect.fail('resolved'), (e: unknown) => e)
    expect(err).to.be.instanceOf(GuanaitongError).with.property('code', 'STORE_FAILED')
    expect(log).to.deep.equal(['SELECT record,', 'ROLLBACK'])
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
