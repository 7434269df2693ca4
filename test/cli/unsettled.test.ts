/**
 * `express-guanaitong unsettled`, run as a real child process through tsx, against the
 * machine's Redis (a unique prefix) holding a RedisStore's unsettled ledger, and against
 * PostgreSQL and MariaDB (a unique table) holding a SQL store's.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { Redis } from 'ioredis'
import { RedisStore } from '../../src/stores/redis'
import type { TransactionalStore, UnsettledLedger, UnsettledRecord } from '../../src/kernel/types'
import { deleteKeys, REDIS_URL, uniquePrefix, unusedPort } from '../stores/redis-helpers'
import { MYSQL_URL, POSTGRES_URL, SQL_KINDS, sqlTarget, uniqueTable } from '../stores/sql-helpers'

const root = resolve(import.meta.dirname, '..', '..')
const HOUR = 60 * 60 * 1000

async function cli(args: string[], env: Record<string, string> = {}) {
  const clean = { ...process.env }
  delete clean.GAT_REDIS_URL
  delete clean.GAT_DATABASE_URL
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'unsettled', ...args], {
    cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr, lines: stdout.trimEnd().split('\n') }
}

function record(no: string, deadline: number, extra: Partial<UnsettledRecord> = {}): UnsettledRecord {
  return {
    key: `20110698:paid:${no}`, appId: '20110698', outerTradeNo: no, totalAmount: '19.90', totalFen: 1990,
    buyerOpenId: 'd87797eea12a2f80ad72ed93214a0908', tradeNo: null, reason: 'AMBIGUOUS', since: deadline - 25 * HOUR, deadline, ...extra,
  }
}

describe('cli unsettled (real Redis)', function () {
  this.timeout(60_000)
  const prefix = uniquePrefix('cli-unsettled')
  let redis: Redis
  let records: UnsettledRecord[]

  before(async () => {
    redis = new Redis(REDIS_URL)
    const store = new RedisStore({ client: redis, prefix })
    const now = Date.now()
    records = [
      record('LATER01', now + 3 * HOUR),
      record('OVERDUE01', now - 2 * HOUR, { tradeNo: '2018070920000005', reason: 'HANDLER_FAILED', totalAmount: '0.01', totalFen: 1 }),
      record('SOON01', now + 10 * 60_000),
    ]
    for (const r of records) await store.watchUnsettled(r)
    records.sort((a, b) => a.deadline - b.deadline)
  })

  after(async () => {
    await deleteKeys(redis, prefix)
    redis.disconnect()
  })

  it('prints a table, soonest deadline first, and a summary', async () => {
    const run = await cli(['--redis', REDIS_URL, '--prefix', prefix])
    expect(run.code, run.stderr).to.equal(0)
    const [header, ...rest] = run.lines
    expect(header.split(/\s+/)).to.deep.equal(['DEADLINE', 'WHEN', 'OUTER_TRADE_NO', 'AMOUNT', 'TRADE_NO', 'REASON', 'BUYER', 'SINCE'])
    const rows = rest.slice(0, 3)
    expect(rows.map((row) => row.split(/\s{2,}/)[2])).to.deep.equal(['OVERDUE01', 'SOON01', 'LATER01'])
    expect(rows[0]).to.match(/due 2h 0m ago\s+OVERDUE01\s+0\.01\s+2018070920000005\s+HANDLER_FAILED\s/)
    expect(rows[1]).to.match(/in 10m\s+SOON01\s+19\.90\s+-\s+AMBIGUOUS/)
    expect(rows[0].startsWith(new Date(records[0].deadline).toISOString().slice(0, 16).replace('T', ' '))).to.equal(true)
    expect(rest[3]).to.equal('3 unsettled pays, 1 past the deadline')
  })

  it('--json prints each record as one JSON line, exactly as stored; --limit keeps the soonest; the URL may come from GAT_REDIS_URL', async () => {
    const run = await cli(['--prefix', prefix, '--json', '--limit', '2'], { GAT_REDIS_URL: REDIS_URL })
    expect(run.code, run.stderr).to.equal(0)
    expect(run.lines.map((line) => JSON.parse(line) as UnsettledRecord)).to.deep.equal(records.slice(0, 2))
  })

  it('prints a stored order number with a bidi control (U+202E) or a line break escaped, as log lines are (issue 21, item 2)', async () => {
    const hostile = `${prefix}hostile:`
    const now = Date.now()
    await new RedisStore({ client: redis, prefix: hostile }).watchUnsettled({
      key: '20110698:paid:AB\u202eDC\nX', appId: '20110698', outerTradeNo: 'AB\u202eDC\nX', totalAmount: '1.00', totalFen: 100,
      buyerOpenId: 'b\u2066uyer', tradeNo: null, reason: 'AMBIGUOUS', since: now, deadline: now + HOUR,
    })
    try {
      const run = await cli(['--redis', REDIS_URL, '--prefix', hostile])
      expect(run.code, run.stderr).to.equal(0)
      expect(run.stdout).to.not.match(/[\u202e\u2066]/)
      expect(run.lines).to.have.length(3)
      expect(run.lines[1]).to.contain('AB\\u202eDC\\nX').and.contain('b\\u2066uyer')
    } finally {
      await deleteKeys(redis, hostile)
    }
  })

  it('says so when there are none', async () => {
    const run = await cli(['--redis', REDIS_URL, '--prefix', `${prefix}empty:`])
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout).to.contain('no unsettled pays under prefix')
  })

  it('an unreachable Redis: exit 3, the password never printed', async () => {
    const run = await cli(['--redis', `redis://:hunter2secret@127.0.0.1:${await unusedPort()}`])
    expect(run.code).to.equal(3)
    expect(run.stderr).to.match(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1/)
    expect(run.stdout + run.stderr).to.not.contain('hunter2secret')
  })

  const bad: Array<[string, string[], RegExp]> = [
    ['no --redis', [], /--redis or --database-url is required \(or set GAT_REDIS_URL or GAT_DATABASE_URL\)/],
    ['both --redis and --database-url', ['--redis', REDIS_URL, '--database-url', POSTGRES_URL], /give --redis or --database-url, not both/],
    ['not a database URL', ['--database-url', 'sqlite:///tmp/x'], /--database-url must be a postgres:\/\/ or mysql:\/\/ URL/],
    ['--table with --redis', ['--redis', REDIS_URL, '--table', 't'], /--table goes with --database-url/],
    ['a table name that is not one', ['--database-url', POSTGRES_URL, '--table', 'x; DROP TABLE y'], /--table: /],
    ['not a redis URL', ['--redis', 'http://127.0.0.1:6379'], /--redis must be a redis:\/\/ or rediss:\/\/ URL/],
    ['a prefix with a brace', ['--redis', REDIS_URL, '--prefix', 'gat:{x}'], /--prefix has no \{ or \}/],
    ['a zero limit', ['--redis', REDIS_URL, '--limit', '0'], /--limit must be a whole number from 1/],
  ]
  for (const [what, args, message] of bad) {
    it(`${what}: exit 2 with a message`, async () => {
      const run = await cli(args)
      expect(run.code).to.equal(2)
      expect(run.stderr).to.match(message)
      // A UsageError is a GuanaitongError (USAGE); the terminal gets its message without the log prefix.
      expect(run.stderr).to.match(/^error: (?!\[express-guanaitong\])/)
    })
  }

  it('--help describes the command', async () => {
    const run = await cli(['--help'])
    expect(run.code).to.equal(0)
    expect(run.stdout).to.contain('Usage: express-guanaitong unsettled (--redis <url> [--prefix gat:] | --database-url <url>')
  })
})

for (const kind of SQL_KINDS) {
  describe(`cli unsettled --database-url (real ${kind})`, function () {
    this.timeout(60_000)
    const target = sqlTarget(kind, 2)
    const table = uniqueTable('cli')
    const url = kind === 'postgres' ? POSTGRES_URL : MYSQL_URL
    let records: UnsettledRecord[]

    before(async () => {
      const store = target.store({ table }) as TransactionalStore & UnsettledLedger
      const now = Date.now()
      records = [record('SQLLATER1', now + 3 * HOUR), record('SQLDUE1', now - HOUR, { tradeNo: '2018070920000005', reason: 'HANDLER_FAILED' })]
      for (const r of records) await store.watchUnsettled(r)
      records.sort((a, b) => a.deadline - b.deadline)
    })

    after(async () => {
      await target.drop(table)
      await target.end()
    })

    it('prints the ledger of the store\'s table, soonest deadline first; --json as stored', async () => {
      const run = await cli(['--database-url', url, '--table', table])
      expect(run.code, run.stderr).to.equal(0)
      expect(run.lines.slice(1, 3).map((row) => row.split(/\s{2,}/)[2])).to.deep.equal(['SQLDUE1', 'SQLLATER1'])
      expect(run.lines[3]).to.equal('2 unsettled pays, 1 past the deadline')
      const json = await cli(['--table', table, '--json'], { GAT_DATABASE_URL: url })
      expect(json.code, json.stderr).to.equal(0)
      expect(json.lines.map((line) => JSON.parse(line) as UnsettledRecord)).to.deep.equal(records)
    })

    it('a table that does not exist: exit 1, and nothing is created', async () => {
      const missing = uniqueTable('cli_missing')
      const run = await cli(['--database-url', url, '--table', missing])
      expect(run.code, run.stdout).to.equal(1)
      expect(run.stderr).to.match(/answered/)
      expect(await target.exists(missing)).to.equal(false)
      expect(await target.exists(`${missing}_unsettled`)).to.equal(false)
    })

    it('an unreachable database: exit 3, the password never printed', async () => {
      const unreachable = new URL(target.unreachableUrl)
      unreachable.password = 'hunter2secret'
      const run = await cli(['--database-url', unreachable.href])
      expect(run.code, run.stderr).to.equal(3)
      expect(run.stderr).to.match(/cannot reach (PostgreSQL|MySQL) at \w+:\/\/\w+:\*\*\*@127\.0\.0\.1/)
      expect(run.stdout + run.stderr).to.not.contain('hunter2secret')
    })
  })
}
