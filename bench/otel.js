// The cost of observability on the notify route (MemoryStore, all new notifications), three
// servers measured in turns:
//   no API       the package cannot resolve @opentelemetry/api (servers/hide-otel.cjs): its own floor
//   API, no SDK  the API installed, nothing registered: what a library user without OpenTelemetry pays
//   SDK          the SDK registered, every span and metric recorded, exported to exporters that drop them
// `node bench/otel.js` (after `npm run build`) runs only this part and prints it; `npm run bench` includes it.
// BENCH_OTEL_ROUNDS (default 5, 1 with BENCH_SMOKE=1) rounds of ROUND_SEC each; the order of the three turns rotates per round.
import { fileURLToPath } from 'node:url'
import { CONNECTIONS, ROUND_SEC, SMOKE, WARMUP_SEC, combine, log, measure, median, warm } from './measure.js'
import { startServer } from './proc.js'

export const OTEL_ROUNDS = Number(process.env.BENCH_OTEL_ROUNDS ?? (SMOKE ? 1 : 5))
const HIDE = fileURLToPath(new URL('./servers/hide-otel.cjs', import.meta.url))

export const OTEL_VARIANTS = [
  { name: 'no API', key: 'none', nodeArgs: ['--require', HIDE], env: {} },
  { name: 'API, no SDK', key: 'api', nodeArgs: [], env: {} },
  { name: 'SDK, no-op exporters', key: 'sdk', nodeArgs: [], env: { BENCH_OTEL: 'sdk' } },
]

/** `run` prefixes order numbers so they are new to every server of this bench run. */
export async function otelScenarios(run) {
  log(`notify-memory without the OpenTelemetry API, with it, with the SDK: ${OTEL_ROUNDS} rounds of ${ROUND_SEC} s each…`)
  const servers = {}
  for (const v of OTEL_VARIANTS) servers[v.key] = await startServer('notify', ['memory'], v.nodeArgs, v.env)
  const config = (key, tag) => ({ url: `http://127.0.0.1:${servers[key].port}/gat/notify`, kind: 'notify', prefix: `${run}O${key}${tag}` })
  try {
    const found = Object.fromEntries(await Promise.all(OTEL_VARIANTS.map(async (v) => [v.key, (await servers[v.key].report()).otelApi])))
    if (found.none !== false || found.api !== true) throw new Error(`@opentelemetry/api resolvable: ${JSON.stringify(found)}; expected none false, api true`)
    for (const v of OTEL_VARIANTS) await warm(config(v.key, 'W'))
    const runs = Object.fromEntries(OTEL_VARIANTS.map((v) => [v.key, []]))
    for (let round = 0; round < OTEL_ROUNDS; round++) {
      // Rotated, so no variant always runs right after the same one.
      for (let i = 0; i < OTEL_VARIANTS.length; i++) {
        const v = OTEL_VARIANTS[(round + i) % OTEL_VARIANTS.length]
        runs[v.key].push(await measure(servers[v.key], config(v.key, round), ROUND_SEC))
      }
    }
    const out = { rounds: OTEL_ROUNDS, roundSec: ROUND_SEC }
    for (const v of OTEL_VARIANTS) out[v.key] = combine(runs[v.key])
    // Each round's ratio to the no-API run of the same round, taken close in time: the median of
    // those is less swayed by a burst of other work on the machine than the ratio of the totals.
    const paired = (key, pick) => median(runs[key].map((r, i) => pick(r) / pick(runs.none[i])))
    for (const key of ['api', 'sdk']) {
      out[key].vsNone = {
        rps: out[key].rps / out.none.rps,
        cpu: out[key].cpuUsPerRequest / out.none.cpuUsPerRequest,
        pairedRps: paired(key, (r) => r.rps),
        pairedCpu: paired(key, (r) => r.cpuUs / r.total),
      }
    }
    return out
  } finally {
    for (const v of OTEL_VARIANTS) await servers[v.key].stop()
  }
}

/** Rows for the report table: req/s and CPU per request of each variant, and its ratios to "no API". */
export function otelLines(o) {
  const pct = (x) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(1)} %`
  return OTEL_VARIANTS.map((v) => {
    const r = o[v.key]
    const vs = r.vsNone ? `; vs no API: req/s ${pct(r.vsNone.rps)} (per-round median ${pct(r.vsNone.pairedRps)}), CPU/req ${pct(r.vsNone.cpu)} (${pct(r.vsNone.pairedCpu)})` : ''
    return { scenario: `notify-memory, OTel: ${v.name}`, run: r, note: `${o.rounds} rounds × ${o.roundSec} s in turns${vs}` }
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  log(`${CONNECTIONS} connections, ${WARMUP_SEC} s warmup`)
  const o = await otelScenarios(Date.now().toString(36).slice(-5).toUpperCase())
  for (const line of otelLines(o)) {
    const r = line.run
    console.log(`${line.scenario.padEnd(44)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ` +
      `${r.cpuUsPerRequest} µs CPU/req  errors ${r.non2xx + r.errors + r.timeouts + r.notSuccess}  ${line.note}`)
  }
  for (const v of OTEL_VARIANTS) console.log(`${v.key} rounds: ${o[v.key].rounds.map((r) => `${Math.round(r.rps)}/${r.cpuUsPerRequest}µs`).join('  ')}`)
}
