// Child processes of the bench: servers (READY / REPORT protocol, see servers/control.js) and
// one-shot scripts that print a JSON line (the load generator, the micro-benchmarks).
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const here = (file) => fileURLToPath(new URL(file, import.meta.url))

/** Every child process still running, so that the bench's time limit can stop them (run.js). */
const children = new Set()
function track(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
/** Kills the children still running, each by its own pid. */
export function killChildren() {
  for (const child of children) child.kill('SIGKILL')
}

/** Lines of a child's stdout, one callback per line. */
function onLines(stream, fn) {
  let buffered = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk) => {
    buffered += chunk
    let nl
    while ((nl = buffered.indexOf('\n')) !== -1) {
      fn(buffered.slice(0, nl))
      buffered = buffered.slice(nl + 1)
    }
  })
}

/** Peak resident set size of a live process, in MB, from /proc (null where there is no /proc). */
export function peakRssMb(pid) {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Math.round(Number(match[1]) / 102.4) / 10 : null
  } catch {
    return null
  }
}

/**
 * Starts `bench/servers/<name>.js`. Resolves with { port, pid, report(), stop() } once it printed
 * `READY <port>`, or with { skipped } when it printed `SKIP <why>`.
 */
export function startServer(name, args = [], nodeArgs = [], env = {}) {
  const child = track(spawn(process.execPath, [...nodeArgs, here(`./servers/${name}.js`), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  }))
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  const waiting = []
  return new Promise((resolve, reject) => {
    onLines(child.stdout, (line) => {
      if (line.startsWith('READY ')) {
        resolve({
          port: Number(line.slice(6)),
          pid: child.pid,
          get stderr() { return stderr },
          report: () => command('report'),
          /** Any other command of servers/control.js (the profiler's); resolves with the report. */
          send: (what) => command(what),
          stop: () => command('stop').then(async (report) => {
            await exited
            return report
          }),
        })
      } else if (line.startsWith('SKIP ')) resolve({ skipped: line.slice(5) })
      else if (line.startsWith('REPORT ')) waiting.shift()?.(JSON.parse(line.slice(7)))
    })
    const exited = new Promise((done) => child.once('exit', done))
    child.once('exit', (code) => reject(new Error(`server ${name} exited (${code}) before READY: ${stderr}`)))
    function command(what) {
      return new Promise((done) => {
        waiting.push(done)
        child.stdin.write(`${what}\n`)
      })
    }
  })
}

/** Runs a script that prints one JSON line on stdout; resolves with it. */
export function runJson(file, args = [], nodeArgs = []) {
  const child = track(spawn(process.execPath, [...nodeArgs, here(file), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').pop()
      if (code === 0 && last) resolve(JSON.parse(last))
      else reject(new Error(`${file} exited ${code}: ${stderr.slice(-2000)}`))
    })
  })
}

/** One load run (see load.js). */
export function load(config) {
  return runJson('./load.js', [JSON.stringify(config)])
}

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * A redis-server on a free port, no persistence (`replicaOf`: a replica of that port). Resolves
 * once it answers PING (and, for a replica, once its link is up), or with { skipped } when there
 * is no redis-server. `stop()` kills it.
 */
export async function startRedis(replicaOf) {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning']
  if (replicaOf) args.push('--replicaof', '127.0.0.1', String(replicaOf))
  const child = track(spawn('redis-server', args, { stdio: 'ignore' }))
  const failed = new Promise((resolve) => child.once('error', (err) => resolve(err)))
  const { default: Redis } = await import('ioredis')
  const deadline = Date.now() + 15_000
  for (;;) {
    const error = await Promise.race([failed, new Promise((resolve) => setTimeout(resolve, 100))])
    if (error) return { skipped: `redis-server: ${error.message}` }
    const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    const info = await probe.connect().then(() => probe.info('replication'), () => '')
    probe.disconnect()
    if (info && (!replicaOf || info.includes('master_link_status:up'))) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      return { skipped: `redis-server on ${port} not ready within 15 s` }
    }
  }
  return {
    port,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    }),
  }
}
