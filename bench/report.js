// Turns the bench's raw results into the table, the targets and results.{json,md}.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { otelLines } from './otel.js'

const round = (n, digits = 2) => (n === null || n === undefined ? null : Math.round(n * 10 ** digits) / 10 ** digits)
const ms = (n) => (n === null || n === undefined ? '–' : n.toFixed(2))
const dash = (n) => (n === null || n === undefined ? '–' : String(n))

/**
 * The notify goals of issue 20: each store against its anchor (the same load, in turns), and the
 * store's own round trips (without the shop's statements) per new notification and per duplicate.
 */
export const NOTIFY_GOALS = [
  { store: 'memory', label: 'MemoryStore', anchor: 'baseline', anchorLabel: 'the bare Express urlencoded handler', ratio: 0.9 },
  { store: 'redis', label: 'RedisStore', anchor: 'baseline', anchorLabel: 'the bare Express urlencoded handler', ratio: 0.85, newTrips: 2, dupTrips: 1 },
  { store: 'postgres', label: 'PostgresStore', anchor: 'hand-postgres', anchorLabel: 'the hand-written handler (BEGIN; INSERT … ON CONFLICT DO NOTHING; COMMIT)', ratio: 0.8, newTrips: 2, dupTrips: 1 },
  { store: 'mysql', label: 'MysqlStore', anchor: 'hand-mysql', anchorLabel: 'the hand-written handler on MariaDB (START TRANSACTION; INSERT IGNORE; COMMIT)', ratio: 0.8, newTrips: 2, dupTrips: 1 },
]
/**
 * Each adapter against its framework's own bare handler (issue 23), in turns: rows, not targets.
 * The package's own work per notification (form, signature, settlement) is the same on every
 * framework; the ratio shows what it weighs next to that framework's own cost.
 */
export const ADAPTER_ROWS = [
  { framework: 'node', label: 'express-guanaitong/node', anchorLabel: 'a bare node:http handler reading the form' },
  { framework: 'fetch', label: 'express-guanaitong/fetch', anchorLabel: 'a bare fetch handler reading the form (both behind the same node:http → fetch bridge)' },
  { framework: 'fastify', label: 'express-guanaitong/fastify', anchorLabel: 'a bare Fastify 5 route with a form parser' },
  { framework: 'koa', label: 'express-guanaitong/koa', anchorLabel: 'a bare Koa 3 middleware reading the form' },
]

const SCENARIO = { baseline: 'baseline (express.urlencoded)', 'hand-postgres': 'hand-written, PostgreSQL', 'hand-mysql': 'hand-written, MariaDB' }
const scenario = (name) => SCENARIO[name] ?? `notify-${name}`

/** Each round's req/s over the anchor's in the same round: `0.41–0.47`. */
function roundRatios(run, anchor) {
  const ratios = run.rounds.map((r, i) => r.rps / anchor.rounds[i].rps)
  return `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`
}

/** `BEGIN 1, INSERT shop 1, …`: round trips per request by what they carried. */
const labels = (pass) => Object.entries(pass.roundTripsByLabel ?? {}).map(([label, n]) => `${label} ${n}`).join(', ')

/** CPU µs per request of each process of a pass: server, database (own connections / whole server), load generator. */
const cpuOf = (pass) => `server ${dash(pass.cpuUsPerRequest)}, database ${dash(pass.databaseCpuUsPerRequest)} own / ` +
  `${dash(pass.databaseWholeCpuUsPerRequest)} whole server, load generator ${dash(pass.loadCpuUsPerRequest)}`

/** The notify targets, for the report and for run.js (which profiles the missed throughput targets). */
export function notifyTargets(notify) {
  const list = []
  for (const goal of NOTIFY_GOALS) {
    const result = notify[goal.store]
    const anchor = notify[goal.anchor]
    const name = `notify-${goal.store} throughput ≥ ${goal.ratio.toFixed(2)} × ${scenario(goal.anchor)}`
    if (!result || result.skipped || !anchor || anchor.skipped) {
      list.push({ kind: 'throughput', store: goal.store, anchor: goal.anchor, name, met: null, measured: `skipped: ${result?.skipped ?? anchor?.skipped ?? 'not run'}` })
      continue
    }
    const pass = result.unique
    const ratio = pass.rps / anchor.rps
    list.push({
      kind: 'throughput', store: goal.store, anchor: goal.anchor, name, met: ratio >= goal.ratio,
      measured: `${ratio.toFixed(2)} × (${Math.round(pass.rps)} vs ${Math.round(anchor.rps)} req/s; rounds ${roundRatios(pass, anchor)} ×)`,
      shortfall: `${((goal.ratio - ratio) * 100).toFixed(0)} points below`,
      why: `CPU µs per request: ${cpuOf(pass)}; the anchor: ${cpuOf(anchor)}` +
        `${pass.roundTripsPerRequest === undefined ? '' : `; ${pass.roundTripsPerRequest} round trips per new notification against the anchor's ${dash(anchor.roundTripsPerRequest ?? 0)}`}` +
        `. The profile below says where the server's time goes.`,
    })
    for (const [which, limit, run] of [['new notification', goal.newTrips, pass], ['duplicate', goal.dupTrips, result.duplicates]]) {
      if (limit === undefined) continue
      const trips = run.storeRoundTripsPerRequest
      list.push({
        kind: 'round trips', store: goal.store, name: `notify-${goal.store} round trips per ${which} ≤ ${limit} (the store's, at the client)`,
        met: trips <= limit,
        measured: `${trips} (by what they carried: ${labels(run) || 'nothing'})`,
        shortfall: `${round(trips - limit)} over`,
        why: 'The store makes more round trips than the goal: see what each carried.',
      })
    }
  }
  return list
}

function rows(r) {
  const out = []
  const add = (name, run, note = '', anchor = undefined) => out.push({ scenario: name, run, note, anchor })
  if (r.ceiling) add('ceiling (node:http)', r.ceiling, '', r.notify.baseline)
  const n = r.notify
  for (const [name] of [['baseline'], ['memory'], ['redis'], ['hand-postgres'], ['postgres'], ['hand-mysql'], ['mysql']]) {
    const result = n[name] ?? { skipped: 'not run' }
    const goal = NOTIFY_GOALS.find((g) => g.store === name)
    if (result.skipped) {
      add(scenario(name), null, `skipped: ${result.skipped}`)
      continue
    }
    if (!goal) {
      add(scenario(name), result, name === 'baseline' ? 'the anchor of notify-memory and notify-redis' : `the anchor of notify-${name.slice(5)}; all new`, name === 'baseline' ? undefined : result)
      continue
    }
    const anchor = n[goal.anchor]?.skipped ? undefined : n[goal.anchor]
    add(scenario(name), result.unique, `all new, × ${scenario(goal.anchor)}; onPaid ${result.unique.onPaidCalls}×`, anchor)
    add(`${scenario(name)}, all duplicates`, result.duplicates, `every request repeats a settled notification; onPaid ${result.duplicates.onPaidCalls}×`, anchor)
  }
  for (const goal of ADAPTER_ROWS) {
    const bare = r.adapters?.[`bare-${goal.framework}`] ?? { skipped: 'not run' }
    const run = r.adapters?.[`adapter-${goal.framework}`] ?? { skipped: 'not run' }
    add(`bare ${goal.framework}`, bare.skipped ? null : bare, bare.skipped ? `skipped: ${bare.skipped}` : `the anchor of ${goal.label}: ${goal.anchorLabel}`)
    add(goal.label, run.skipped ? null : run, run.skipped ? `skipped: ${run.skipped}` : `all new, MemoryStore, × bare ${goal.framework}; onPaid ${run.onPaidCalls}×`, bare.skipped ? undefined : bare)
  }
  const c = r.consoleLogger
  if (c) add('notify-memory, all duplicates, console logger', c, `logger: console (the default); onPaid ${c.onPaidCalls}×`, n.baseline)
  for (const line of r.otel ? otelLines(r.otel) : []) add(line.scenario, line.run, line.note, n.baseline)
  const p = r.pay
  if (p) {
    add('pay route, max', p.routeMax, 'router → sandbox (3 processes)', n.baseline)
    add('sandbox direct, max', p.directMax, 'pre-signed requests (2 processes)', n.baseline)
    add(`pay route @ ${p.rate}/s`, p.routePaced, 'paced load', n.baseline)
    add(`sandbox direct @ ${p.rate}/s`, p.directPaced, 'same paced load', n.baseline)
  }
  const settle = r.paySettle
  if (settle) {
    for (const [name, note] of [['off', 'settleOnPay: false'], ['memory', 'settle on the answer, MemoryStore'], ['redis', 'settle on the answer, RedisStore']]) {
      const run = settle[name]
      add(`pay route @ ${p.rate}/s, settle ${name}`, run?.skipped ? null : run, run?.skipped ? `skipped: ${run.skipped}` : `${note}; onPaid ${run.onPaidCalls}×`, n.baseline)
    }
  }
  const rep = r.replication
  if (rep?.skipped) add('notify-redis, primary + replica', null, `skipped: ${rep.skipped}`)
  else if (rep) {
    add('notify-redis, primary + replica', rep.plain, 'all new; RedisStore without waitReplicas', n.baseline)
    add('notify-redis, primary + replica, waitReplicas 1', rep.wait, 'in turns with the row above; WAIT after each done-marker', n.baseline)
    add('notify-redis, waitReplicas 1, replica down', rep.replicaDown, 'each WAIT runs out (waitTimeoutMs) while holding the store\'s one connection', n.baseline)
  }
  return out.map(({ scenario: name, run, note, anchor }) => ({
    scenario: name,
    // Bodies made during the run cost the load generator CPU it would otherwise spend sending.
    note: run?.generatedLate ? `${note}${note ? '; ' : ''}${run.generatedLate} bodies generated during the run` : note,
    rps: run ? round(run.rps, 0) : null,
    ratio: run && anchor ? round(run.rps / anchor.rps, 2) : null,
    p50: run ? round(run.p50) : null,
    p99: run ? round(run.p99) : null,
    cpuUsPerRequest: run?.cpuUsPerRequest ?? null,
    databaseCpuUsPerRequest: run?.databaseCpuUsPerRequest ?? null,
    databaseWholeCpuUsPerRequest: run?.databaseWholeCpuUsPerRequest ?? null,
    loadCpuUsPerRequest: run?.loadCpuUsPerRequest ?? null,
    roundTripsPerRequest: run?.roundTripsPerRequest ?? null,
    peakRssMb: run?.peakRssMb ?? null,
    errors: run ? run.non2xx + run.errors + run.timeouts + (run.notSuccess ?? 0) : null,
  }))
}

function target(name, met, measured, shortfall, why, caveat) {
  return { name, met, measured, ...(met ? {} : { shortfall, why }), ...(met && caveat ? { caveat } : {}) }
}

function otherTargets(r) {
  const list = []
  const base = r.notify.baseline
  const mem = r.notify.memory?.unique
  if (mem && base && !base.skipped) {
    const p99 = mem.p99 / base.p99
    list.push(target('notify-memory p99 ≤ 1.2 × baseline p99', p99 <= 1.2, `${p99.toFixed(2)} × (${ms(mem.p99)} vs ${ms(base.p99)} ms)`,
      `${ms(mem.p99 - 1.2 * base.p99)} ms over`,
      `The tail follows throughput at 50 connections (p99 ≈ queue depth × service time) plus GC pauses; ${mem.cpuUsPerRequest} against ${base.cpuUsPerRequest} µs of server CPU per request.`))
  }
  const settle = r.paySettle
  for (const store of ['memory', 'redis']) {
    const run = settle?.[store]
    if (!run || run.skipped || !settle.off || settle.off.skipped) continue
    const added = (key) => run[key] - settle.off[key]
    list.push(target(`report: what settling on the pay answer adds (${store})`, true,
      `p50 ${added('p50') >= 0 ? '+' : ''}${ms(added('p50'))} ms, p99 ${added('p99') >= 0 ? '+' : ''}${ms(added('p99'))} ms over settleOnPay: false at the same paced load; ${run.cpuUsPerRequest} vs ${settle.off.cpuUsPerRequest} µs of server CPU per pay`))
  }
  if (r.otel) {
    const api = r.otel.api.vsNone
    list.push(target('notify-memory with @opentelemetry/api installed and no SDK ≥ 0.98 × without it', api.rps >= 0.98,
      `${api.rps.toFixed(3)} × (${Math.round(r.otel.api.rps)} vs ${Math.round(r.otel.none.rps)} req/s; per-round median ${api.pairedRps.toFixed(3)} ×), CPU per request ${api.cpu.toFixed(3)} ×`,
      `${((0.98 - api.rps) * 100).toFixed(1)} points below`,
      'The three servers ran in turns; the per-round median and the CPU per request are less swayed by other work on the machine, and bench/otel-micro.js measures the time the instrumentation adds per notification directly.'))
  }
  const p = r.pay
  if (p) {
    const gap = p.routePaced.p50 - p.directPaced.p50
    list.push(target(`pay route p50 ≤ direct sandbox p50 + 1 ms (50 connections, ${p.rate} req/s)`, gap <= 1,
      `${ms(p.routePaced.p50)} vs ${ms(p.directPaced.p50)} ms (+${ms(gap)} ms)`, `${ms(gap - 1)} ms over`,
      `The route adds a process hop: Express, body parsing, validation, signing, a keep-alive node:http request and its answer; ${p.routePaced.cpuUsPerRequest} µs of pay-server CPU per request, on a machine where the sandbox and the load generator use the same cores.`,
      gap > 0.75 ? `Close to the limit: the route spends ${p.routePaced.cpuUsPerRequest} µs of CPU per pay (see README.md, "Profiling").` : undefined))
    const u = p.upstream
    list.push(target(`sockets opened at the sandbox ≤ ${r.settings.connections} (pay route at full speed)`, u.connectionsAtFullSpeed <= r.settings.connections,
      `${u.connectionsAtFullSpeed} for ${u.payCallsAtFullSpeed} pay calls and ${u.tokenCalls} token call; ${u.connectionsWhilePaced} more during the paced run, where sockets idle past the keep-alive timeout close and are reopened when needed`,
      `${u.connectionsAtFullSpeed - r.settings.connections} more`,
      'The token call opens a socket while the first 50 pays wait for the token; they are then sent at once and need 50 more.'))
    list.push(target('one token call for the whole run', u.tokenCalls === 1, `${u.tokenCalls}`,
      `${u.tokenCalls - 1} extra`, 'Concurrent first calls did not share one token creation.'))
  }
  const m = r.micro?.memoryStore
  if (m) {
    list.push(target('MemoryStore, 1 000 000 done-markers < 200 MB heap', m.heapDeltaMb < 200, `${m.heapDeltaMb} MB (${m.bytesPerEntry} bytes per entry)`,
      `${(m.heapDeltaMb - 200).toFixed(1)} MB over`, 'Per-entry overhead of the Map, the key string and the marker.'))
    list.push(target('MemoryStore maxEntries honoured', m.boundHonoured,
      `${m.sizeFull} entries at the bound, ${m.sizeAfterExtra} after ${m.extraKeys} more keys; oldest evicted: ${m.oldestEvicted}, newest kept: ${m.newestDone}`,
      'bound exceeded', 'See bench/micro.js.'))
  }
  return list
}

const HEAD = ['scenario', 'req/s', '× anchor', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'DB CPU µs/req (own / whole)', 'load gen. CPU µs/req', 'round trips/req', 'peak RSS MB', 'errors', 'note']
const cells = (row) => [row.scenario, dash(row.rps), dash(row.ratio), ms(row.p50), ms(row.p99), dash(row.cpuUsPerRequest),
  row.databaseCpuUsPerRequest === null && row.databaseWholeCpuUsPerRequest === null ? '–' : `${dash(row.databaseCpuUsPerRequest)} / ${dash(row.databaseWholeCpuUsPerRequest)}`,
  dash(row.loadCpuUsPerRequest), dash(row.roundTripsPerRequest), dash(row.peakRssMb), dash(row.errors), row.note]

function plain(head, body) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)))
  const line = (cs) => cs.map((cell, i) => (i === 0 || i === cs.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

function markdown(head, body) {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 || i === head.length - 1 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...body.map((row) => `| ${row.join(' | ')} |`)].join('\n')
}

const verdict = (g) => (g.met === null ? 'skipped' : g.met ? 'met' : 'NOT MET')

/** Per store: its ratio to its anchor, round trips per new notification and per duplicate, CPU per request. */
function storeTable(n) {
  const head = ['store', 'anchor', 'req/s × anchor (rounds)', 'goal', 'round trips per new notification: store (with the shop\'s)', 'per duplicate', 'goal (new / dup)',
    'server CPU µs/req (anchor)', 'DB CPU µs/req own / whole (anchor)', 'by what each round trip carried (new; dup)']
  const body = NOTIFY_GOALS.map((g) => {
    const s = n[g.store]
    const a = n[g.anchor]
    if (!s || s.skipped || !a || a.skipped) return [g.label, scenario(g.anchor), `skipped: ${s?.skipped ?? a?.skipped ?? 'not run'}`, `≥ ${g.ratio}`, '–', '–', '–', '–', '–', '–']
    const u = s.unique
    const d = s.duplicates
    const ratio = u.rps / a.rps
    return [g.label, scenario(g.anchor), `${ratio >= g.ratio ? '' : '**'}${ratio.toFixed(2)}${ratio >= g.ratio ? '' : '**'} (${roundRatios(u, a)})`, `≥ ${g.ratio.toFixed(2)}`,
      u.storeRoundTripsPerRequest === undefined ? '0 (in process)' : `${u.storeRoundTripsPerRequest} (${u.roundTripsPerRequest})`,
      d.storeRoundTripsPerRequest === undefined ? '0' : String(d.storeRoundTripsPerRequest),
      g.newTrips === undefined ? '–' : `≤ ${g.newTrips} / ${g.dupTrips}`,
      `${u.cpuUsPerRequest} (${a.cpuUsPerRequest})`,
      `${dash(u.databaseCpuUsPerRequest)} / ${dash(u.databaseWholeCpuUsPerRequest)} (${dash(a.databaseCpuUsPerRequest)} / ${dash(a.databaseWholeCpuUsPerRequest)})`,
      u.roundTripsByLabel ? `${labels(u)}; ${labels(d) || 'none'}` : '–']
  })
  return markdown(head, body)
}

/**
 * The two tables of issue 20 for the README's performance section, filled from this run: paste them
 * there as they are (the lead fills the README from the whole run on merged main).
 */
function readmeBlock(r) {
  const n = r.notify
  const ratioRows = NOTIFY_GOALS.map((g) => {
    const s = n[g.store]
    const a = n[g.anchor]
    const ok = s && !s.skipped && a && !a.skipped
    const ratio = ok ? s.unique.rps / a.rps : null
    return `| ${g.label} vs ${g.anchorLabel} | ${ok ? `${ratio >= g.ratio ? '' : '**'}${ratio.toFixed(2)} ×${ratio >= g.ratio ? '' : '**'}` : 'not measured'} | ≥ ${g.ratio.toFixed(2)} × (${ok ? (ratio >= g.ratio ? 'met' : 'not met') : '–'}) |`
  })
  const tripRows = NOTIFY_GOALS.filter((g) => g.newTrips !== undefined).map((g) => {
    const s = n[g.store]
    return s && !s.skipped ? `| ${g.label} | ${s.unique.storeRoundTripsPerRequest} | ${s.duplicates.storeRoundTripsPerRequest} |` : `| ${g.label} | – | – |`
  })
  return [
    '| store | req/s ratio | goal |',
    '|---|---|---|',
    ...ratioRows,
    '',
    '| store | round trips per new notification (beyond the shop\'s own statement) | per duplicate of a settled one |',
    '|---|---|---|',
    ...tripRows,
    '| **goal** | **≤ 2** | **1** |',
  ].join('\n')
}

/** Writes `dir`/results.json and results.md, and prints the table and the verdicts. */
export function writeResults(results, dir) {
  const list = rows(results)
  const goals = [...notifyTargets(results.notify), ...otherTargets(results)]
  const body = list.map(cells)
  const m = results.micro
  const micro = m && `sign ${m.signOpsPerSec.toLocaleString('en')} ops/s, verifySign ${m.verifyOpsPerSec.toLocaleString('en')} ops/s ` +
    `(${m.fieldCount}-field notification, sha1); MemoryStore 1 000 000 done-markers: ${m.memoryStore.heapDeltaMb} MB heap`
  const verdicts = goals.map((g) => `${verdict(g).padEnd(7)}  ${g.name}: ${g.measured}` + (g.met === false ? `\n         ${g.shortfall}. ${g.why}` : ''))
  const profiles = Object.entries(results.profiles ?? {})

  console.log(`\n${plain(HEAD, body)}\n${micro ? `\n${micro}\n` : ''}\n${verdicts.join('\n')}\n`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ ...results, table: list, targets: goals }, null, 2)}\n`)

  const { machine, settings } = results
  const warning = results.smoke
    ? '\n**SMOKE RUN** (`BENCH_SMOKE=1`): a few seconds per scenario, to check that the bench works. Its figures mean nothing.\n'
    : results.partial ? `\n**Partial run** (\`BENCH_ONLY=${results.partial}\`): only these scenarios.\n` : ''
  writeFileSync(join(dir, 'results.md'), `# Benchmark results

${results.date.slice(0, 10)} · ${machine.cores} cores (${machine.cpu}) · Node ${machine.node} · ${machine.platform} · ${results.elapsedSec} s${results.plannedLoadSec ? ` (at most ${results.plannedLoadSec} s of load by design)` : ''} · load average at the end ${machine.loadAvg.map((x) => x.toFixed(2)).join(' ')}
${warning}
\`npm run bench\` (see [README.md](README.md) for the method). Every server ran in its own process and the load
generator (autocannon, ${settings.connections} connections) in another, after ${settings.warmupSec} s of warmup. The notify servers
(the anchors and the stores) were measured in turns, ${settings.rounds} rounds of ${settings.roundSec} s each, so that other work on the
machine hits them alike: their req/s is over all rounds, p50/p99 the median of the rounds' values. Each store's
"all duplicates" row is one ${settings.roundSec} s run after the rounds. Other rows are single ${settings.durationSec} s runs unless their note says
otherwise. **Client, server and databases share the ${machine.cores} cores**: the ratios, taken in the same run, are what the
targets use. "× anchor" is the row's req/s over its anchor's (the bare Express handler, or for a SQL store the
hand-written handler on the same database; for the rows after the stores, the bare Express handler). CPU µs/req is each process's user + system time per response: the
server's; the database's, for this server's connections (PostgreSQL backends, MariaDB threads) and for the whole
database server (every client's work, and the background writers); the load generator's. Round trips per request
are counted at the client for every request the server received (README.md, "Round trips").

## Stores against their anchors

${storeTable(results.notify)}

## Targets

${goals.map((g) => `- **${verdict(g)}** — ${g.name}: ${g.measured}.` +
    (g.met === false ? ` Short by ${g.shortfall}. ${g.why}` : '') + (g.caveat ? ` ${g.caveat}` : '')).join('\n')}
${profiles.length ? `
## Where the time goes (missed throughput targets)

Each store's server and its anchor's, profiled alone (bench/profile.js) after ${settings.warmupSec} s of warmup, for ${settings.roundSec} s of
all-new notifications: each package's share of the server's non-idle samples, applied to the CPU time the server
used per request while profiled (the profiler's own cost included). The database's and the load generator's CPU
per request are in the table "Stores against their anchors".

${profiles.map(([, lines]) => lines.join('\n')).join('\n\n')}
` : ''}
## All scenarios

${markdown(HEAD, body)}
${micro ? `\nMicro-benchmarks: ${micro}; ${m.memoryStore.bytesPerEntry} bytes per entry, filled in ${m.memoryStore.fillMs} ms.\n` : ''}
## For the README's performance section

${readmeBlock(results)}

## Notes

- Notify: every notification is distinct and validly signed, generated just before its run (timestamps are real and
  within the 300 s window). The "all duplicates" passes repeat notifications settled in the last round, re-signed
  with a fresh timestamp like Guanaitong's retries: answered \`success\` without onPaid.
- The SQL stores' onPaid writes one payment row through ctx.tx; the hand-written handlers write the same row with
  INSERT … ON CONFLICT DO NOTHING / INSERT IGNORE in their own transaction, on the same pool size (${settings.sqlPool}).
${results.pay ? `- Pay: "direct" is the same autocannon load sent straight to a second sandbox process, each request pre-signed the
  way the client signs it, with an access token obtained before the run and its own outer_trade_no; no notify_url,
  so the sandboxes deliver nothing. The p50 comparison uses a paced load of ${settings.payRate} req/s, a quarter of the pay
  route's throughput measured just before (each connection sends at fixed intervals, staggered).
` : ''}`)
  console.log(`${join(dir, 'results.md')} written`)
}
