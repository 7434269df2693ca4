// CPU profile of a bench server under load, summarised (after `npm run build`):
//   node bench/profile.js run [server=notify] [arg=memory]   profile it under 10 s of load, then summarise
//   node bench/profile.js <file.cpuprofile> [top=25] [pattern]
// The summary lists the functions with the most self time, the self time per package, and the
// total (self + callees) time of the functions matching `pattern`.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { load, startServer } from './proc.js'

async function profileServer(name = 'notify', arg = 'memory') {
  const dir = mkdtempSync(join(tmpdir(), 'gat-prof-'))
  const server = await startServer(name, arg ? [arg] : [], ['--cpu-prof', `--cpu-prof-dir=${dir}`])
  const config = { url: `http://127.0.0.1:${server.port}/gat/notify`, kind: 'notify', connections: 50 }
  await load({ ...config, durationSec: 3, pool: 50_000, prefix: `PW${Date.now() % 1e6}` })
  const result = await load({ ...config, durationSec: 10, pool: 150_000, prefix: `PA${Date.now() % 1e6}` })
  await server.stop()
  console.log(`${name} ${arg}: ${Math.round(result.rps)} req/s under the profiler`)
  return join(dir, readdirSync(dir)[0])
}

function summarise(file, top = 25, pattern = undefined) {
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
  // first package up the stack, or Node's HTTP server for the answers. Share of non-idle time.
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
  const pct = (us) => `${((100 * us) / totalUs).toFixed(1).padStart(5)} %`
  const list = (map, filter = () => true) => [...map].filter(([name]) => filter(name)).sort((a, b) => b[1] - a[1])
    .slice(0, Number(top)).map(([name, us]) => `${pct(us)}  ${name}`).join('\n')
  console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled\n\nself time by package\n${list(groups)}\n\nself time\n${list(self)}`)
  const busyUs = totalUs - idleUs
  console.log(`\nsocket writes by caller, share of non-idle time (${(busyUs / 1e6).toFixed(2)} s)\n${[...writes].sort((a, b) => b[1] - a[1])
    .map(([by, us]) => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %  ${by}`).join('\n')}`)
  if (pattern) console.log(`\ntotal time, functions matching /${pattern}/\n${list(total, (name) => new RegExp(pattern).test(name))}`)
}

const [first, ...rest] = process.argv.slice(2)
if (first === 'run') summarise(await profileServer(...rest), 30, 'dist/')
else summarise(first, ...rest)
