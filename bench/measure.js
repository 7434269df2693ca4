// What the bench's orchestrators share: settings, and warming up, measuring and combining runs
// against a server process (see proc.js).
import os from 'node:os'
import { load, peakRssMb } from './proc.js'

export const WARMUP_SEC = Number(process.env.BENCH_WARMUP ?? 3)
export const DURATION_SEC = Number(process.env.BENCH_DURATION ?? 10)
/** Baseline, notify-memory and notify-redis are measured in turns: ROUNDS runs of ROUND_SEC each. */
export const ROUNDS = 3
export const ROUND_SEC = Math.max(2, Math.round(DURATION_SEC / 2.5))
export const CONNECTIONS = 50

/** Bodies to pre-generate for `seconds` of load (the loader makes more on the fly if they run out). */
const RATES = { ceiling: 50_000, pay: 4_000 }
const pool = (kind, seconds, rate) => Math.ceil(seconds * (rate ? rate * 1.1 : RATES[kind] ?? 14_000))

export const log = (message) => process.stderr.write(`[bench] ${message}\n`)
export const sum = (list, pick) => list.reduce((total, item) => total + pick(item), 0)
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const commandCount = (report) => sum(Object.values(report.commands ?? {}), (n) => n)
/** What the SQL stores' servers count, by kind of statement (servers/sql.js), between two reports. */
const statementsBetween = (before, after) => Object.fromEntries(Object.entries(after.statements)
  .map(([kind, n]) => [kind, n - (before.statements?.[kind] ?? 0)]).filter(([, n]) => n > 0))

/** Warms a server up with `seconds` of its own distinct requests; resolves with the loader's result. */
export function warm(config, seconds = WARMUP_SEC, poolKind = config.kind) {
  return load({ connections: CONNECTIONS, ...config, durationSec: seconds, pool: pool(poolKind, seconds, config.rate), prefix: `${config.prefix}W` })
}

/**
 * One measured run against a warm server: the loader's numbers, plus the server's own CPU time per
 * request (it stays meaningful when client and server compete for the cores) and its peak RSS.
 */
export async function measure(server, config, seconds = DURATION_SEC, poolKind = config.kind) {
  const before = await server.report()
  const loadAvg = os.loadavg()[0]
  const result = await load({ connections: CONNECTIONS, ...config, durationSec: seconds, pool: pool(poolKind, seconds, config.rate) })
  const after = await server.report()
  return {
    ...result,
    cpuUs: after.cpuUs - before.cpuUs,
    cpuUsPerRequest: result.total ? Math.round((after.cpuUs - before.cpuUs) / result.total) : null,
    onPaidCalls: after.paid === undefined ? undefined : after.paid - before.paid,
    redisCommands: after.commands ? commandCount(after) - commandCount(before) : undefined,
    sqlStatements: after.statements ? statementsBetween(before, after) : undefined,
    databaseCpuUs: after.database && after.database.source === before.database?.source ? after.database.cpuUs - before.database.cpuUs : undefined,
    peakRssMb: peakRssMb(server.pid) ?? Math.round(after.maxRssKb / 102.4) / 10,
    loadAvg: Math.round(loadAvg * 100) / 100,
    before,
    after,
  }
}

/** Runs taken in turns with other scenarios, as one: summed throughput, median p50/p99 over the rounds. */
export function combine(runs) {
  const total = sum(runs, (r) => r.total)
  const durationSec = sum(runs, (r) => r.durationSec)
  const counted = (key) => (runs[0][key] === undefined ? undefined : sum(runs, (r) => r[key]))
  const redisCommands = counted('redisCommands')
  // SQL statements (each one a round trip to the database), by kind and in all: per request, and
  // per settled notification (per done-marker). Requests still in flight when the load stops are
  // not in autocannon's total but their statements are counted: per done-marker is exact in a
  // pass of new notifications, where each settles with one done-marker and nothing else does.
  const sql = runs[0].sqlStatements === undefined ? undefined : {}
  for (const run of sql ? runs : []) for (const [kind, n] of Object.entries(run.sqlStatements)) sql[kind] = (sql[kind] ?? 0) + n
  const per = (n, of) => Math.round((n / of) * 100) / 100
  const perRequest = (n) => per(n, total)
  const statements = sql && sum(Object.values(sql), (n) => n)
  const settled = sql?.['done-marker'] ?? 0
  const readable = runs.filter((r) => r.databaseCpuUs !== undefined)
  return {
    rps: total / durationSec,
    total,
    durationSec,
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    cpuUsPerRequest: Math.round(sum(runs, (r) => r.cpuUs) / total),
    // The load generator's CPU, and the database's where the server can read it (SQL stores).
    loadCpuUsPerRequest: runs.every((r) => r.loadCpuUs !== undefined) ? Math.round(sum(runs, (r) => r.loadCpuUs) / total) : undefined,
    // Over the runs where the database could be read the same way before and after.
    ...(readable.length ? { databaseCpuUsPerRequest: Math.round(sum(readable, (r) => r.databaseCpuUs) / sum(readable, (r) => r.total)) } : {}),
    onPaidCalls: counted('onPaidCalls'),
    ...(redisCommands === undefined ? {} : { redisCommandsPerRequest: perRequest(redisCommands) }),
    ...(sql === undefined ? {} : {
      sqlStatements: sql,
      sqlStatementsPerRequest: perRequest(statements),
      sqlStatementsByKind: Object.fromEntries(Object.entries(sql).map(([kind, n]) => [kind, perRequest(n)])),
      sqlStatementsPerSettled: settled ? per(statements, settled) : null,
      sqlStatementsPerSettledByKind: settled ? Object.fromEntries(Object.entries(sql).map(([kind, n]) => [kind, per(n, settled)])) : null,
    }),
    non2xx: sum(runs, (r) => r.non2xx),
    errors: sum(runs, (r) => r.errors),
    timeouts: sum(runs, (r) => r.timeouts),
    notSuccess: sum(runs, (r) => r.notSuccess ?? 0),
    generatedLate: sum(runs, (r) => r.generatedLate),
    peakRssMb: runs.at(-1).peakRssMb,
    loadAvg: Math.max(...runs.map((r) => r.loadAvg)),
    sent: runs.at(-1).sent,
    rounds: runs.map(({ rps, p50, p99, cpuUsPerRequest, loadAvg }) => ({ rps, p50, p99, cpuUsPerRequest, loadAvg })),
  }
}
