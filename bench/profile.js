// CPU profile of a bench server under load, summarised (after `npm run build`):
//   node bench/profile.js run [server=notify] [arg=memory]   profile it under 10 s of load (after 3 s of warmup), then summarise
//   node bench/profile.js <file.cpuprofile> [top=25] [pattern]
// The summary lists the functions with the most self time, the self time per package, and the
// total (self + callees) time of the functions matching `pattern`. run.js uses `profileServer` and
// `summarise` to say where the time goes when a throughput target is missed (`compareProfiles`).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { load, startServer } from './proc.js'

/**
 * Runs `bench/servers/<name>.js args` with `warmupSec` of all-new notifications, then profiles it
 * (V8's sampling profiler, started and stopped in the server: servers/control.js) under `seconds`
 * more; resolves with { file, dir, rps, requests, cpuUs }: the requests the server received and the
 * CPU time it used while profiled.
 */
export async function profileServer(name = 'notify', args = ['memory'], { warmupSec = 3, seconds = 10, prefix = `P${Date.now() % 1e6}` } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gat-prof-'))
  const server = await startServer(name, args)
  if (server.skipped) throw new Error(`${name} ${args.join(' ')}: ${server.skipped}`)
  try {
    const config = { url: `http://127.0.0.1:${server.port}/gat/notify`, kind: 'notify', connections: 50 }
    await load({ ...config, durationSec: warmupSec, pool: warmupSec * 14_000, prefix: `${prefix}W` })
    const before = await server.send('profile-start')
    const result = await load({ ...config, durationSec: seconds, pool: seconds * 14_000, prefix: `${prefix}A` })
    const file = join(dir, 'server.cpuprofile')
    const after = await server.send(`profile-stop ${file}`)
    return { file, dir, rps: result.rps, requests: after.requests - before.requests, cpuUs: after.cpuUs - before.cpuUs }
  } finally {
    await server.stop()
  }
}

/**
 * A profile's sampled time (µs): in all, idle, by package (`groups`), by function (`self`), total
 * time of each function (`total`), and socket writes by who made them (`writes`).
 */
export function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  // Each sample is attributed to one node; time deltas are in microseconds.
  const selfUs = new Map()
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0)

  const where = ({ functionName, url, lineNumber }) =>
    `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|bench)\//, '$1/')}${url ? `:${lineNumber + 1}` : ''}`
  const group = ({ functionName, url }) => (url.includes('/dist/') ? 'express-guanaitong (dist)'
    : url.includes('/bench/') ? 'the bench server itself (counting, reports)'
    : url.includes('node_modules/') ? url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')
      : url.startsWith('node:') ? 'node internals (JS)' : `${functionName || '(native)'} (native)`)

  const self = new Map()
  const groups = new Map()
  const total = new Map()
  const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us)
  for (const [id, us] of selfUs) {
    const frame = byId.get(id).callFrame
    add(self, where(frame), us)
    add(groups, group(frame), us)
    // Total time: count each function once per sample, however deep its recursion.
    const seen = new Set()
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const name = where(byId.get(at).callFrame)
      if (!seen.has(name)) add(total, name, us)
      seen.add(name)
    }
  }
  // Socket writes (a syscall that, over loopback, also wakes the reader) by who made them: the
  // first package up the stack, or Node's HTTP server for the answers.
  const writes = new Map()
  let idleUs = 0
  for (const [id, us] of selfUs) {
    const { functionName } = byId.get(id).callFrame
    if (functionName === '(idle)') idleUs += us
    if (!['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String'].includes(functionName)) continue
    let by = 'other'
    for (let at = parent.get(id); at !== undefined; at = parent.get(at)) {
      const { url } = byId.get(at).callFrame
      if (url.includes('node_modules/')) { by = group(byId.get(at).callFrame); break }
      if (url.startsWith('node:_http')) { by = 'HTTP answers (node:http)'; break }
    }
    add(writes, by, us)
  }
  groups.delete('(idle) (native)')
  return { totalUs, idleUs, groups, self, total, writes }
}

/** A map's entries, largest value first. */
const sorted = (map) => [...map].sort((a, b) => b[1] - a[1])

/**
 * Where the time goes in `store`'s server against its anchor's (both from profileServer): µs of
 * server CPU per request, non-idle, by package and socket writes, side by side; and the store's
 * top functions by self time. Markdown lines.
 */
export function compareProfiles(label, store, anchorLabel, anchor, top = 12) {
  const a = summarise(store.file)
  const b = summarise(anchor.file)
  // Samples are taken at wall-clock intervals: on a busy machine a sample also covers time the
  // process waited for a core. So each package's share of the non-idle samples is applied to the CPU
  // time the server really used per request while profiled.
  const scale = (p, run) => (us) => (us / (p.totalUs - p.idleUs)) * (run.cpuUs / run.requests)
  const perA = scale(a, store)
  const perB = scale(b, anchor)
  const keys = new Set([...a.groups.keys(), ...b.groups.keys()])
  const rows = [...keys].map((key) => [key, perA(a.groups.get(key) ?? 0), perB(b.groups.get(key) ?? 0)]).sort((x, y) => (y[1] - y[2]) - (x[1] - x[2]))
  const fmt = (us) => us.toFixed(1)
  const busyA = a.totalUs - a.idleUs
  return [
    `**${label}** (${Math.round(store.rps)} req/s under the profiler) against **${anchorLabel}** (${Math.round(anchor.rps)} req/s): ` +
      `server CPU per request ${fmt(store.cpuUs / store.requests)} against ${fmt(anchor.cpuUs / anchor.requests)} µs; ` +
      `idle ${((100 * a.idleUs) / a.totalUs).toFixed(0)} % against ${((100 * b.idleUs) / b.totalUs).toFixed(0)} % of the samples (waiting for the database or the load).`,
    '',
    `| server CPU by package, µs per request | ${label} | ${anchorLabel} | difference |`,
    '| --- | ---: | ---: | ---: |',
    ...rows.filter(([, x, y]) => x + y >= 0.5).map(([key, x, y]) => `| ${key} | ${fmt(x)} | ${fmt(y)} | ${x - y >= 0 ? '+' : ''}${fmt(x - y)} |`),
    '',
    `Socket writes in ${label}'s server, share of its non-idle samples: ${sorted(a.writes).map(([by, us]) => `${by} ${((100 * us) / busyA).toFixed(1)} %`).join(', ') || 'none'}.`,
    '',
    `Top functions by self time in ${label}'s server (µs per request): ${sorted(a.self).filter(([name]) => !name.startsWith('(idle)')).slice(0, top)
      .map(([name, us]) => `\`${name}\` ${fmt(perA(us))}`).join(', ')}.`,
  ]
}

/** Deletes the profiles' directories. */
export const removeProfiles = (...profiles) => profiles.forEach((p) => rmSync(p.dir, { recursive: true, force: true }))

function print(file, top = 25, pattern = undefined) {
  const { totalUs, idleUs, groups, self, total, writes } = summarise(file)
  const pct = (us) => `${((100 * us) / totalUs).toFixed(1).padStart(5)} %`
  const list = (map, filter = () => true) => sorted(map).filter(([name]) => filter(name))
    .slice(0, Number(top)).map(([name, us]) => `${pct(us)}  ${name}`).join('\n')
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled, ${pct(idleUs).trim()} idle\n\nself time by package\n${list(groups)}\n\nself time\n${list(self)}`)
  const busyUs = totalUs - idleUs
  console.log(`\nsocket writes by caller, share of non-idle time (${(busyUs / 1e6).toFixed(2)} s)\n${sorted(writes)
    .map(([by, us]) => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %  ${by}`).join('\n')}`)
  if (pattern) console.log(`\ntotal time, functions matching /${pattern}/\n${list(total, (name) => new RegExp(pattern).test(name))}`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [first, ...rest] = process.argv.slice(2)
  if (first === 'run') {
    const [name = 'notify', arg = 'memory'] = rest
    const run = await profileServer(name, arg ? [arg] : [])
    console.log(`${name} ${arg}: ${Math.round(run.rps)} req/s under the profiler`)
    print(run.file, 30, 'dist/')
  } else print(first, ...rest)
}
