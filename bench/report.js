// Turns the bench's raw results into the table, the targets and bench/results.{json,md}.
import { writeFileSync } from 'node:fs'
import { otelLines } from './otel.js'

const round = (n, digits = 2) => (n === null || n === undefined ? null : Math.round(n * 10 ** digits) / 10 ** digits)
const ms = (n) => (n === null || n === undefined ? '–' : n.toFixed(2))

/** `read 1, insert marker 1, …`: the SQL statements per request, by kind. */
const statementKinds = (pass, byKind = pass.sqlStatementsByKind) => Object.entries(byKind).map(([kind, n]) => `${kind} ${n}`).join(', ')

/** Each round's req/s over the baseline's in the same round: `0.41–0.47`. */
function roundRatios(run, base) {
  const ratios = run.rounds.map((round, i) => round.rps / base.rounds[i].rps)
  return `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`
}

function rows(r) {
  const out = []
  const add = (scenario, run, note = '') => out.push({ scenario, run, note })
  add('ceiling (node:http)', r.ceiling)
  add('baseline (express.urlencoded)', r.baseline)
  for (const [name, result = { skipped: 'not run' }] of [['notify-memory', r.notifyMemory], ['notify-redis', r.notifyRedis],
    ['notify-postgres', r.notifyPostgres], ['notify-mysql', r.notifyMysql]]) {
    if (result.skipped) {
      add(name, null, `skipped: ${result.skipped}`)
      continue
    }
    const trips = (pass) => (pass.redisCommandsPerRequest !== undefined ? `, ${pass.redisCommandsPerRequest} Redis commands/req`
      : pass.sqlStatementsPerRequest !== undefined ? `, ${pass.sqlStatementsPerRequest} SQL statements/req (${statementKinds(pass)})` : '')
    const perNew = (pass) => (pass.sqlStatementsPerSettled ? `, ${pass.sqlStatementsPerSettled} SQL statements per new notification (${statementKinds(pass, pass.sqlStatementsPerSettledByKind)})` : trips(pass))
    add(name, result.unique, `all new; onPaid ${result.unique.onPaidCalls}×${perNew(result.unique)}`)
    add(`${name}, 30 % dup`, result.duplicates, `onPaid ${result.duplicates.onPaidCalls}× for ${result.duplicates.total} requests${trips(result.duplicates)}`)
  }
  const c = r.consoleLogger
  add('notify-memory, 30 % dup, console logger', c, `logger: console (the default); onPaid ${c.onPaidCalls}× for ${c.total} requests`)
  for (const line of otelLines(r.otel)) add(line.scenario, line.run, line.note)
  const p = r.pay
  add('pay route, max', p.routeMax, 'router → sandbox (3 processes)')
  add('sandbox direct, max', p.directMax, 'pre-signed requests (2 processes)')
  add(`pay route @ ${p.rate}/s`, p.routePaced, 'paced load')
  add(`sandbox direct @ ${p.rate}/s`, p.directPaced, 'same paced load')
  const settle = r.paySettle
  if (settle) {
    for (const [name, note] of [['off', 'settleOnPay: false'], ['memory', 'settle on the answer, MemoryStore'], ['redis', 'settle on the answer, RedisStore']]) {
      const run = settle[name]
      add(`pay route @ ${p.rate}/s, settle ${name}`, run?.skipped ? null : run, run?.skipped ? `skipped: ${run.skipped}` : `${note}; onPaid ${run.onPaidCalls}×`)
    }
  }
  const rep = r.replication
  if (!rep || rep.skipped) add('notify-redis, primary + replica', null, `skipped: ${rep?.skipped ?? 'not run'}`)
  else {
    const cmds = (run) => `${run.redisCommandsPerRequest} Redis commands/req`
    add('notify-redis, primary + replica', rep.plain, `all new; RedisStore without waitReplicas; ${cmds(rep.plain)}`)
    add('notify-redis, primary + replica, waitReplicas 1', rep.wait, `in turns with the row above; WAIT after each done-marker; ${cmds(rep.wait)}`)
    add('notify-redis, waitReplicas 1, replica down', rep.replicaDown, 'each WAIT runs out (waitTimeoutMs) while holding the store\'s one connection')
  }
  return out.map(({ scenario, run, note }) => ({
    scenario,
    // Bodies made during the run cost the load generator CPU it would otherwise spend sending.
    note: run?.generatedLate ? `${note}${note ? '; ' : ''}${run.generatedLate} bodies generated during the run` : note,
    rps: run ? round(run.rps, 0) : null,
    ratio: run ? round(run.rps / r.baseline.rps, 2) : null,
    p50: run ? round(run.p50) : null,
    p99: run ? round(run.p99) : null,
    cpuUsPerRequest: run?.cpuUsPerRequest ?? null,
    peakRssMb: run?.peakRssMb ?? null,
    errors: run ? run.non2xx + run.errors + run.timeouts + (run.notSuccess ?? 0) : null,
  }))
}

function target(name, met, measured, shortfall, why, caveat) {
  return { name, met, measured, ...(met ? {} : { shortfall, why }), ...(met && caveat ? { caveat } : {}) }
}

function targets(r) {
  const list = []
  const settle = r.paySettle
  for (const store of ['memory', 'redis']) {
    const run = settle?.[store]
    if (!run || run.skipped || !settle.off || settle.off.skipped) continue
    const added = (key) => run[key] - settle.off[key]
    list.push(target(`report: what settling on the pay answer adds (${store})`, true,
      `p50 ${added('p50') >= 0 ? '+' : ''}${ms(added('p50'))} ms, p99 ${added('p99') >= 0 ? '+' : ''}${ms(added('p99'))} ms over settleOnPay: false at the same paced load; ${run.cpuUsPerRequest} vs ${settle.off.cpuUsPerRequest} µs of server CPU per pay`))
  }
  const base = r.baseline
  const cpu = (run) => `${run.cpuUsPerRequest} µs of server CPU per request against the baseline's ${base.cpuUsPerRequest} µs`
  const busy = (run) => (run.loadAvg > r.machine.cores ? ` The load average reached ${run.loadAvg} on ${r.machine.cores} cores when it started: other work competed for the CPU.` : '')
  const mem = r.notifyMemory.unique
  if (mem) {
    const ratio = mem.rps / base.rps
    list.push(target('notify-memory throughput ≥ 0.90 × baseline', ratio >= 0.9, `${ratio.toFixed(2)} × (${Math.round(mem.rps)} vs ${Math.round(base.rps)} req/s)`,
      `${((0.9 - ratio) * 100).toFixed(0)} points below`,
      `${cpu(mem)}: parsing, sha1 verification and the store claim/complete cost more than express.urlencoded() alone.${busy(mem)}`))
    const p99 = mem.p99 / base.p99
    list.push(target('notify-memory p99 ≤ 1.2 × baseline p99', p99 <= 1.2, `${p99.toFixed(2)} × (${ms(mem.p99)} vs ${ms(base.p99)} ms)`,
      `${ms(mem.p99 - 1.2 * base.p99)} ms over`,
      `The tail follows throughput at 50 connections (p99 ≈ queue depth × service time) plus GC pauses; ${cpu(mem)}.${busy(mem)}`))
  }
  const api = r.otel.api.vsNone
  list.push(target('notify-memory with @opentelemetry/api installed and no SDK ≥ 0.98 × without it', api.rps >= 0.98,
    `${api.rps.toFixed(3)} × (${Math.round(r.otel.api.rps)} vs ${Math.round(r.otel.none.rps)} req/s; per-round median ${api.pairedRps.toFixed(3)} ×), CPU per request ${api.cpu.toFixed(3)} ×`,
    `${((0.98 - api.rps) * 100).toFixed(1)} points below`,
    `The three servers ran in turns; the per-round median and the CPU per request are less swayed by other work on the machine, and bench/otel-micro.js measures the time the instrumentation adds per notification directly.`))
  const redis = r.notifyRedis
  if (redis.skipped) list.push({ name: 'notify-redis throughput ≥ 0.70 × baseline', met: null, measured: `skipped: ${redis.skipped}` })
  else {
    const ratio = redis.unique.rps / base.rps
    list.push(target('notify-redis throughput ≥ 0.70 × baseline', ratio >= 0.7,
      `${ratio.toFixed(2)} × (${Math.round(redis.unique.rps)} req/s), ${redis.unique.redisCommandsPerRequest} Redis commands per new notification, ${redis.duplicates.redisCommandsPerRequest} with 30 % duplicates`,
      `${((0.7 - ratio) * 100).toFixed(0)} points below`,
      `Each new notification needs a claim and a complete (${redis.unique.redisCommandsPerRequest} round trips); ${cpu(redis.unique)}; Redis itself runs on the same 2 cores.${busy(redis.unique)}`))
  }
  for (const [name, sql = { skipped: 'not run' }, server] of [['notify-postgres', r.notifyPostgres, 'PostgreSQL'], ['notify-mysql', r.notifyMysql, 'MariaDB/MySQL']]) {
    const goal = `${name} throughput ≥ 0.50 × baseline`
    if (sql.skipped) {
      list.push({ name: goal, met: null, measured: `skipped: ${sql.skipped}` })
      continue
    }
    const ratio = sql.unique.rps / base.rps
    list.push(target(goal, ratio >= 0.5,
      `${ratio.toFixed(2)} × (${Math.round(sql.unique.rps)} vs ${Math.round(base.rps)} req/s; rounds ${roundRatios(sql.unique, base)} ×), ` +
      `${sql.unique.sqlStatementsPerSettled} round trips per new notification (${statementKinds(sql.unique, sql.unique.sqlStatementsPerSettledByKind)}), ` +
      `${sql.duplicates.sqlStatementsPerRequest} per request with 30 % duplicates (${statementKinds(sql.duplicates)})`,
      `${((0.5 - ratio) * 100).toFixed(0)} points below`,
      `Each new notification is ${sql.unique.sqlStatementsPerSettled} statements in sequence, two of them durable commits, on a pool of ${r.settings.sqlPool ?? 10} connections; ` +
      `${cpu(sql.unique)}, plus ${sql.unique.databaseCpuUsPerRequest ?? '?'} µs of ${server} CPU` +
      `${server === 'PostgreSQL' ? ' (the pool\'s backends)' : ' (the whole server process)'}, on the same ${r.machine.cores} cores as the server and the load generator ` +
      `(${sql.unique.loadCpuUsPerRequest ?? '?'} vs ${base.loadCpuUsPerRequest ?? '?'} µs per request); see README.md, "SQL stores".${busy(sql.unique)}`))
  }
  const p = r.pay
  const gap = p.routePaced.p50 - p.directPaced.p50
  list.push(target(`pay route p50 ≤ direct sandbox p50 + 1 ms (50 connections, ${p.rate} req/s)`, gap <= 1,
    `${ms(p.routePaced.p50)} vs ${ms(p.directPaced.p50)} ms (+${ms(gap)} ms)`, `${ms(gap - 1)} ms over`,
    `The route adds a process hop: Express, body parsing, validation, signing, a keep-alive node:http request and its answer; ${p.routePaced.cpuUsPerRequest} µs of pay-server CPU per request, on a machine where the sandbox and the load generator use the same 2 cores.`,
    gap > 0.75 ? `Close to the limit: the route spends ${p.routePaced.cpuUsPerRequest} µs of CPU per pay (see README.md, "Profiling").` : undefined))
  const u = p.upstream
  list.push(target(`sockets opened at the sandbox ≤ ${r.settings.connections} (pay route at full speed)`, u.connectionsAtFullSpeed <= r.settings.connections,
    `${u.connectionsAtFullSpeed} for ${u.payCallsAtFullSpeed} pay calls and ${u.tokenCalls} token call; ${u.connectionsWhilePaced} more during the paced run, where sockets idle past the keep-alive timeout close and are reopened when needed`,
    `${u.connectionsAtFullSpeed - r.settings.connections} more`,
    'The token call opens a socket while the first 50 pays wait for the token; they are then sent at once and need 50 more.'))
  list.push(target('one token call for the whole run', p.upstream.tokenCalls === 1, `${p.upstream.tokenCalls}`,
    `${p.upstream.tokenCalls - 1} extra`, 'Concurrent first calls did not share one token creation.'))
  const m = r.micro.memoryStore
  list.push(target('MemoryStore, 1 000 000 done-markers < 200 MB heap', m.heapDeltaMb < 200, `${m.heapDeltaMb} MB (${m.bytesPerEntry} bytes per entry)`,
    `${(m.heapDeltaMb - 200).toFixed(1)} MB over`, 'Per-entry overhead of the Map, the key string and the marker.'))
  list.push(target('MemoryStore maxEntries honoured', m.boundHonoured,
    `${m.sizeFull} entries at the bound, ${m.sizeAfterExtra} after ${m.extraKeys} more keys; oldest evicted: ${m.oldestEvicted}, newest kept: ${m.newestDone}`,
    'bound exceeded', 'See bench/micro.js.'))
  return list
}

function table(list) {
  const head = ['scenario', 'req/s', '× base', 'p50 ms', 'p99 ms', 'CPU µs/req', 'peak RSS MB', 'errors', 'note']
  const body = list.map((row) => [row.scenario, row.rps ?? '–', row.ratio ?? '–', ms(row.p50), ms(row.p99),
    row.cpuUsPerRequest ?? '–', row.peakRssMb ?? '–', row.errors ?? '–', row.note].map(String))
  return { head, body }
}

function plain({ head, body }) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)))
  const line = (cells) => cells.map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

function markdown({ head, body }) {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 || i === head.length - 1 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...body.map((row) => `| ${row.join(' | ')} |`)].join('\n')
}

export function writeResults(results) {
  const list = rows(results)
  const goals = targets(results)
  const t = table(list)
  const m = results.micro
  const micro = `sign ${m.signOpsPerSec.toLocaleString('en')} ops/s, verifySign ${m.verifyOpsPerSec.toLocaleString('en')} ops/s ` +
    `(${m.fieldCount}-field notification, sha1); MemoryStore 1 000 000 done-markers: ${m.memoryStore.heapDeltaMb} MB heap`
  const verdicts = goals.map((g) => `${g.met === null ? 'SKIPPED' : g.met ? 'MET    ' : 'NOT MET'}  ${g.name}: ${g.measured}` +
    (g.met === false ? `\n         ${g.shortfall}. ${g.why}` : ''))

  console.log(`\n${plain(t)}\n\n${micro}\n\n${verdicts.join('\n')}\n`)
  writeFileSync(new URL('./results.json', import.meta.url), `${JSON.stringify({ ...results, table: list, targets: goals }, null, 2)}\n`)

  const { machine, settings } = results
  writeFileSync(new URL('./results.md', import.meta.url), `# Benchmark results

${results.date.slice(0, 10)} · ${machine.cores} cores (${machine.cpu}) · Node ${machine.node} · ${machine.platform} · ${results.elapsedSec} s

\`npm run bench\` (see [README.md](README.md) for the method). Every server ran in its own process and the load
generator (autocannon, ${settings.connections} connections) in another, after ${settings.warmupSec} s of warmup. Baseline,
notify-memory and notify-redis were measured in turns, ${settings.rounds} rounds of ${settings.roundSec} s each, so that other work on
the machine hits them alike: their req/s is over all rounds, p50/p99 the median of the rounds' values. The other
rows are single ${settings.durationSec} s runs. **Client and server share the ${machine.cores} cores**, so absolute numbers are
lower than on a dedicated machine; the ratios, taken in the same run, are what the targets use. Latencies are
exact percentiles of every response; "CPU µs/req" is the server process's own CPU time per request (user + system),
which other load on the machine does not inflate the way it does throughput. Peak RSS is the server's VmHWM.

## Results

${markdown(t)}

Micro-benchmarks: ${micro}; ${m.memoryStore.bytesPerEntry} bytes per entry, filled in ${m.memoryStore.fillMs} ms.

## Targets

${goals.map((g) => `- **${g.met === null ? 'skipped' : g.met ? 'met' : 'not met'}** — ${g.name}: ${g.measured}.` +
    (g.met === false ? ` Short by ${g.shortfall}. ${g.why}` : '') + (g.caveat ? ` ${g.caveat}` : '')).join('\n')}

## Notes

- Pay: "direct" is the same autocannon load sent straight to a second sandbox process, each request pre-signed the
  way the client signs it, with an access token obtained before the run and its own outer_trade_no; no notify_url,
  so the sandboxes deliver nothing. The p50 comparison uses a paced load of ${settings.payRate} req/s, a quarter of the pay
  route's throughput measured just before (each connection sends at fixed intervals, staggered): at full speed
  the route's p50 is dominated by queueing behind its lower throughput (rows "max").
- Notify: every notification is distinct and validly signed, generated just before its run (timestamps are real and
  within the 300 s window). The second pass repeats, in 30 % of the requests, one of the last 5 000 notifications
  of the first pass, re-signed with a fresh timestamp like a Guanaitong retry: answered \`success\` without onPaid.
`)
}

/**
 * `BENCH_ONLY=notify node bench/run.js`: baseline and the notify stores in turns, several times;
 * writes bench/results-sql.{json,md}: each run's throughput ratios, their spread, and what a new
 * notification costs in CPU and round trips with each store.
 */
export function writeSqlResults(results) {
  const { runs, machine, settings } = results
  const names = [['memory', 'notify-memory'], ['redis', 'notify-redis'], ['postgres', 'notify-postgres'], ['mysql', 'notify-mysql']]
  const passOf = (run, name) => (name === 'baseline' ? run.baseline : run[name]?.unique)
  const ratio = (run, name) => passOf(run, name).rps / run.baseline.rps
  const rounds = (run, name) => roundRatios(passOf(run, name), run.baseline)
  const load = (values) => values.map((n) => n.toFixed(2)).join(' ')
  const measured = names.filter(([name]) => runs.every((run) => passOf(run, name)?.rps))
  const spread = (values) => {
    const sorted = [...values].sort((a, b) => a - b)
    return { min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1) }
  }

  const perRun = [
    `| run | load average before (1, 5, 15 min) | after | baseline req/s | ${measured.map(([, label]) => `${label} req/s (× base; rounds)`).join(' | ')} |`,
    `| ---: | --- | --- | ---: | ${measured.map(() => '---:').join(' | ')} |`,
    ...runs.map((run, i) => `| ${i + 1} | ${load(run.loadBefore)} | ${load(run.loadAfter)} | ${Math.round(run.baseline.rps)} | ` +
      `${measured.map(([name]) => `${Math.round(passOf(run, name).rps)} (${ratio(run, name).toFixed(2)}; ${rounds(run, name)})`).join(' | ')} |`),
  ].join('\n')

  const median = (pick) => spread(runs.map(pick).filter((n) => n !== undefined && n !== null)).median
  const cost = [
    '| scenario | req/s | server CPU µs/req | load generator CPU µs/req | database CPU µs/req | all three | round trips per new notification | 30 % dup: round trips per request |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...[['baseline', 'baseline (express.urlencoded)'], ...measured].map(([name, label]) => {
      const pick = (key) => median((run) => passOf(run, name)[key])
      const last = passOf(runs.at(-1), name)
      const dup = runs.at(-1)[name]?.duplicates
      const trips = last.sqlStatementsPerSettled !== undefined
        ? `${last.sqlStatementsPerSettled} (${statementKinds(last, last.sqlStatementsPerSettledByKind)})`
        : last.redisCommandsPerRequest !== undefined ? `${last.redisCommandsPerRequest} Redis commands` : '–'
      const dupTrips = dup?.sqlStatementsPerRequest !== undefined ? `${dup.sqlStatementsPerRequest} (${statementKinds(dup)})`
        : dup?.redisCommandsPerRequest !== undefined ? `${dup.redisCommandsPerRequest} Redis commands` : '–'
      const all = median((run) => { const p = passOf(run, name); return p.cpuUsPerRequest + (p.loadCpuUsPerRequest ?? 0) + (p.databaseCpuUsPerRequest ?? 0) })
      return `| ${label} | ${Math.round(pick('rps'))} | ${pick('cpuUsPerRequest')} | ${pick('loadCpuUsPerRequest') ?? '–'} | ` +
        `${pick('databaseCpuUsPerRequest') ?? '–'} | ${all} | ${trips} | ${dupTrips} |`
    }),
  ].join('\n')

  const verdicts = measured.filter(([name]) => name === 'postgres' || name === 'mysql').map(([name, label]) => {
    const ratios = spread(runs.map((run) => ratio(run, name)))
    const roundValues = runs.flatMap((run) => passOf(run, name).rounds.map((round, i) => round.rps / run.baseline.rounds[i].rps))
    const met = runs.filter((run) => ratio(run, name) >= 0.5).length
    return `- **${met === runs.length ? 'met' : met === 0 ? 'not met' : `met in ${met} of ${runs.length} runs`}** — ${label} throughput ≥ 0.50 × baseline: ` +
      `median ${ratios.median.toFixed(2)} × over ${runs.length} runs (${ratios.min.toFixed(2)}–${ratios.max.toFixed(2)}; single rounds ` +
      `${Math.min(...roundValues).toFixed(2)}–${Math.max(...roundValues).toFixed(2)}).`
  })

  writeFileSync(new URL('./results-sql.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(new URL('./results-sql.md', import.meta.url), `# Benchmark results: SQL stores

${results.date.slice(0, 10)} · ${machine.cores} cores (${machine.cpu}) · Node ${machine.node} · ${machine.platform} · ${results.elapsedSec} s

\`BENCH_ONLY=notify node bench/run.js\` (see [README.md](README.md), "SQL stores"): baseline, notify-memory,
notify-redis, notify-postgres and notify-mysql measured in turns, ${settings.rounds} rounds of ${settings.roundSec} s each after
${settings.warmupSec} s of warmup, ${settings.connections} connections, the whole repeated ${runs.length} times. The SQL stores use a pool of ${settings.sqlPool}
connections (the drivers' default); their onPaid INSERTs a payment row through ctx.tx. **The machine was shared
with other work** (load averages below, on ${machine.cores} cores): absolute figures are far below the quiet-machine
ones in [results.md](results.md), and even ratios taken in the same run move from round to round.

## Targets

${verdicts.join('\n')}
- **report** — round trips per new notification: ${measured.filter(([name]) => name === 'postgres' || name === 'mysql')
    .map(([name, label]) => `${label} ${passOf(runs.at(-1), name).sqlStatementsPerSettled}`).join(', ')} (statements the pool sent ÷ done-markers written, in the all-new pass; by kind in the table below).

## Each run

Throughput over the run's rounds, its ratio to the baseline of the same run, and the range of the per-round ratios.

${perRun}

## What a new notification costs (medians over the runs; round trips from the last run)

CPU time per request of each process, from the all-new pass: the server (its own rusage), the load generator
(autocannon's process) and the database (PostgreSQL: the backends of the server's pool, read from /proc;
MariaDB: the whole \`mariadbd\` process, so any other client's queries in that time are included). With the
cores saturated, throughput follows the CPU all three spend per request ("all three", the median of each run's sum).

${cost}
`)
  console.log(`\n${verdicts.join('\n')}\n\nbench/results-sql.md written`)
}
