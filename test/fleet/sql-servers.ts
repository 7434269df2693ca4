/**
 * The machine's PostgreSQL and MariaDB servers, stopped and started by the SQL fleet test. They
 * are shared with every other test: `ensureUp()` (from after hooks) starts one that a failed run
 * left down. Needs root (pg_ctlcluster switches to the postgres user; mariadbd to mysql, from
 * /etc/mysql/my.cnf).
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { MYSQL_URL, POSTGRES_URL, type SqlKind } from '../stores/sql-helpers'
import { sleep } from '../helpers'

const exec = promisify(execFile)

/** How long a server may take to answer after a start. */
const START_TIMEOUT_MS = 60_000

export interface SqlServer {
  kind: SqlKind
  /** Why this machine cannot restart the server (not root, a tool missing); undefined when it can. */
  cannotRestart(): string | undefined
  /** When the running server started, epoch ms by its own clock. Rejects when it does not answer. */
  startedAt(): Promise<number>
  /** Stops the server and starts it again; resolves once it answers queries. */
  restart(): Promise<void>
  /** Starts the server unless it answers; resolves once it does. */
  ensureUp(): Promise<void>
}

/** Resolves once `startedAt` answers; throws after `timeoutMs`. */
async function waitForAnswer(server: SqlServer, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await server.startedAt()
      return
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${server.kind} did not answer within ${timeoutMs} ms: ${(err as Error).message}`)
    }
    await sleep(100)
  }
}

async function answers(server: SqlServer): Promise<boolean> {
  return server.startedAt().then(() => true, () => false)
}

function missing(tools: readonly string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'the test must run as root to restart the database'
  const absent = tools.filter((tool) => !existsSync(tool))
  return absent.length > 0 ? `not installed: ${absent.join(', ')}` : undefined
}

const PG_CTLCLUSTER = '/usr/bin/pg_ctlcluster'

/** The Debian cluster `<version> main` (the only version under /etc/postgresql). */
export function postgresServer(): SqlServer {
  const version = () => readdirSync('/etc/postgresql')[0]
  const ctl = (action: 'start' | 'restart') => exec(PG_CTLCLUSTER, ['--skip-systemctl-redirect', version(), 'main', action])
  const server: SqlServer = {
    kind: 'postgres',
    cannotRestart: () => missing([PG_CTLCLUSTER, '/etc/postgresql']),
    async startedAt() {
      const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 })
      client.on('error', () => {})
      try {
        await client.connect()
        const { rows } = await client.query('SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1000)::float8 AS t')
        return Number(rows[0].t)
      } finally {
        await client.end().catch(() => {})
      }
    },
    async restart() {
      // Fast mode (pg_ctlcluster's default): sessions are terminated, open transactions roll back.
      await ctl('restart')
      await waitForAnswer(server)
    },
    async ensureUp() {
      if (await answers(server)) return
      await ctl('start').catch(() => {}) // "already running" while it recovers: the wait decides
      await waitForAnswer(server)
    },
  }
  return server
}

const MARIADBD = '/usr/sbin/mariadbd'
const MYSQLADMIN = '/usr/bin/mysqladmin'
const START_STOP_DAEMON = '/usr/sbin/start-stop-daemon'
const MARIADB_PID_FILE = '/run/mysqld/mysqld.pid'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The machine's MariaDB: `mysqladmin shutdown`, then mariadbd started in the background. */
export function mariadbServer(): SqlServer {
  const start = () => exec(START_STOP_DAEMON, ['--start', '--oknodo', '--background', '--exec', MARIADBD])
  const server: SqlServer = {
    kind: 'mysql',
    cannotRestart: () => missing([MARIADBD, MYSQLADMIN, START_STOP_DAEMON]),
    async startedAt() {
      const conn = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 })
      conn.on('error', () => {})
      try {
        const [rows] = await conn.query(
          "SELECT UNIX_TIMESTAMP(NOW(3)) * 1000 - VARIABLE_VALUE * 1000 AS t FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
        return Number((rows as Array<{ t: string }>)[0].t)
      } finally {
        conn.destroy()
      }
    },
    async restart() {
      const pid = Number(readFileSync(MARIADB_PID_FILE, 'utf8').trim())
      await exec(MYSQLADMIN, ['-uroot', 'shutdown'])
      // mysqladmin returns once the server took the order; the process may still be flushing.
      const deadline = Date.now() + START_TIMEOUT_MS
      while (alive(pid)) {
        if (Date.now() > deadline) throw new Error(`mariadbd ${pid} still running ${START_TIMEOUT_MS} ms after mysqladmin shutdown`)
        await sleep(50)
      }
      await start()
      await waitForAnswer(server)
    },
    async ensureUp() {
      if (await answers(server)) return
      await start()
      await waitForAnswer(server)
    },
  }
  return server
}

export function sqlServer(kind: SqlKind): SqlServer {
  return kind === 'postgres' ? postgresServer() : mariadbServer()
}
