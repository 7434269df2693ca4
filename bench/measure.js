// What the bench's orchestrators share: settings, and warming up, measuring and combining runs
// against a server process (see proc.js).
import os from 'node:os'
import { load, peakRssMb } from './proc.js'

/** BENCH_SMOKE=1: every scenario a few seconds, to check that the bench works (its figures mean nothing). */
export const SMOKE = process.env.BENCH_SMOKE === '1'
export const WARMUP_SEC = Number(process.env.BENCH_WARMUP ?? (SMOKE ? 1 : 3))
export const DURATION_SEC = Number(process.env.BENCH_DURATION ?? (SMOKE ? 2 : 10))
/** The scenarios measured in turns: ROUNDS runs of ROUND_SEC each. */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 2 : 3))
export const ROUND_SEC = Math.max(2, Math.round(DURATION_SEC / 2.5))
export const CONNECTIONS = 50

/**
 * Bodies to pre-generate for `seconds` of load (the loader makes more on the fly if they run out):
 * twice the rate last measured at that URL, else a default by kind. The SQL servers answer a tenth of
 * the baseline's rate: sizing their pools for it saves most of the bench's body generation. Not for
 * duplicates, which a store may answer several times faster than new notifications.
 */
const RATES = { ceiling: 50_000, pay: 4_000 }
const lastRate = new Map()
const pool = (config, seconds, kind = config.kind) => Math.ceil(seconds * (config.rate ? config.rate * 1.1
  : lastRate.has(config.url) && !config.dup ? Math.max(200, lastRate.get(config.url) * 2) : RATES[kind] ?? 14_000))

const started = performance.now()
export const log = (message) => process.stderr.write(`[bench +${Math.round((performance.now() - started) / 1000)} s] ${message}\n`)
export const sum = (list, pick) => list.reduce((total, item) => total + pick(item), 0)
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
/** Counts by label between two reports (servers/wire.js). */
const labelsBetween = (before, after) => Object.fromEntries(Object.entries(after.byLabel)
  .map(([label, n]) => [label, n - (before?.byLabel[label] ?? 0)]).filter(([, n]) => n > 0))
/** CPU µs of the database between two reports, `key` 'ownUs' (this server's connections) or 'wholeUs'. */
const databaseBetween = (before, after, key) => (after?.[key] !== undefined && before?.[key] !== undefined && after.source === before.source
  ? after[key] - before[key] : undefined)

/** Warms a server up with `seconds` of its own distinct requests; resolves with the loader's result. */
export async function warm(config, seconds = WARMUP_SEC, poolKind = config.kind) {
  const result = await load({ connections: CONNECTIONS, ...config, durationSec: seconds, pool: pool(config, seconds, poolKind), prefix: `${config.prefix}W` })
  lastRate.set(config.url, result.rps)
  return result
}

/**
 * One measured run against a warm server: the loader's numbers, plus the server's own CPU time per
 * request (it stays meaningful when client and server compete for the cores) and its peak RSS.
 */
export async function measure(server, config, seconds = DURATION_SEC, poolKind = config.kind) {
  const before = await server.report()
  const loadAvg = os.loadavg()[0]
  const result = await load({ connections: CONNECTIONS, ...config, durationSec: seconds, pool: pool(config, seconds, poolKind) })
  lastRate.set(config.url, result.rps)
  const after = await server.report()
  return {
    ...result,
    cpuUs: after.cpuUs - before.cpuUs,
    cpuUsPerRequest: result.total ? Math.round((after.cpuUs - before.cpuUs) / result.total) : null,
    onPaidCalls: after.paid === undefined ? undefined : after.paid - before.paid,
    // The requests the server received (aborted ones included) and the round trips they made.
    served: after.requests - before.requests,
    roundTrips: after.roundTrips ? after.roundTrips.total - before.roundTrips.total : undefined,
    roundTripsByLabel: after.roundTrips ? labelsBetween(before.roundTrips, after.roundTrips) : undefined,
    shopRoundTrips: after.shopRoundTrips === undefined ? undefined : after.shopRoundTrips - before.shopRoundTrips,
    databaseCpuUs: databaseBetween(before.database, after.database, 'ownUs'),
    databaseWholeCpuUs: databaseBetween(before.database, after.database, 'wholeUs'),
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
  // Round trips per request the server received, the store's alone (without the shop's own
  // statements, sent by onPaid) and by label.
  const served = sum(runs, (r) => r.served)
  const trips = counted('roundTrips')
  const shop = counted('shopRoundTrips') ?? 0
  const byLabel = {}
  for (const run of trips === undefined ? [] : runs) for (const [label, n] of Object.entries(run.roundTripsByLabel)) byLabel[label] = (byLabel[label] ?? 0) + n
  const per = (n) => Math.round((n / served) * 100) / 100
  /** Database CPU µs per request, over the runs where it could be read the same way before and after. */
  const databasePerRequest = (key) => {
    const readable = runs.filter((r) => r[key] !== undefined)
    return readable.length ? Math.round(sum(readable, (r) => r[key]) / sum(readable, (r) => r.total)) : undefined
  }
  return {
    rps: total / durationSec,
    total,
    durationSec,
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    cpuUsPerRequest: Math.round(sum(runs, (r) => r.cpuUs) / total),
    // The load generator's CPU, and the database's: this server's connections (PostgreSQL backends,
    // MariaDB threads) and the whole database server (other clients' work included).
    loadCpuUsPerRequest: runs.every((r) => r.loadCpuUs !== undefined) ? Math.round(sum(runs, (r) => r.loadCpuUs) / total) : undefined,
    databaseCpuUsPerRequest: databasePerRequest('databaseCpuUs'),
    databaseWholeCpuUsPerRequest: databasePerRequest('databaseWholeCpuUs'),
    onPaidCalls: counted('onPaidCalls'),
    served,
    ...(trips === undefined ? {} : {
      roundTripsPerRequest: per(trips),
      storeRoundTripsPerRequest: per(trips - shop),
      roundTripsByLabel: Object.fromEntries(Object.entries(byLabel).sort((a, b) => b[1] - a[1]).map(([label, n]) => [label, per(n)])),
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
