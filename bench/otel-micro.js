// What the instrumentation adds to one notification, measured in one process without HTTP: the
// wrappers a settled notification goes through (guanaitong.notify around a claim step, the
// handler and a complete step) around no-op work, against the same awaits unwrapped.
//
//   node bench/otel-micro.js                 runs each mode in its own process, interleaved, and prints a summary
//   node --import tsx bench/otel-micro.js <mode>   one mode: none (API hidden), api (no SDK), sdk (no-op exporters)
//
// Unlike the rest of the bench it loads src/observe through tsx: those functions are not exported
// from dist. tsx compiles once at load; the loops run plain JavaScript.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ITERATIONS = Number(process.env.BENCH_OTEL_ITERATIONS ?? 200_000)
const REPEATS = Number(process.env.BENCH_OTEL_REPEATS ?? 5)
const MODES = ['none', 'api', 'sdk']
const here = fileURLToPath(import.meta.url)

async function one(mode) {
  if (mode === 'sdk') await import('./servers/otel-sdk.js')
  const { traceHandler, traceNotify, traceStep } = await import('../src/observe/telemetry.ts')
  const { otel } = await import('../src/observe/otel.ts')
  const answer = { outcome: 'success', reason: 'HANDLED', outerTradeNo: 'T1000000005' }
  const noop = async () => {}
  const bare = async () => {
    await noop()
    await noop()
    await noop()
    return answer
  }
  const wrapped = () => traceNotify('notify', async () => {
    await traceStep('guanaitong.store.claim', noop)
    await traceHandler('notify', noop)
    await traceStep('guanaitong.store.complete', noop)
    return answer
  })
  const time = async (fn) => {
    const started = process.cpuUsage()
    for (let i = 0; i < ITERATIONS; i++) await fn()
    const used = process.cpuUsage(started)
    return (used.user + used.system) / ITERATIONS
  }
  // Warm both paths up, then alternate, keeping the best of each (the least disturbed by other work).
  await time(bare)
  await time(wrapped)
  let bareUs = Infinity
  let wrappedUs = Infinity
  for (let i = 0; i < 3; i++) {
    bareUs = Math.min(bareUs, await time(bare))
    wrappedUs = Math.min(wrappedUs, await time(wrapped))
  }
  return { mode, apiLoaded: otel() !== null, bareUs, wrappedUs, addedUs: wrappedUs - bareUs }
}

if (process.argv[2]) {
  process.stdout.write(`${JSON.stringify(await one(process.argv[2]))}\n`)
} else {
  const hide = fileURLToPath(new URL('./servers/hide-otel.cjs', import.meta.url))
  const results = Object.fromEntries(MODES.map((m) => [m, []]))
  for (let r = 0; r < REPEATS; r++) {
    for (const mode of MODES) {
      const args = [...(mode === 'none' ? ['--require', hide] : []), '--import', 'tsx', here, mode]
      const run = spawnSync(process.execPath, args, { encoding: 'utf8' })
      if (run.status !== 0) throw new Error(`${mode}: ${run.stderr}`)
      results[mode].push(JSON.parse(run.stdout.trim().split('\n').pop()))
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  for (const mode of MODES) {
    const runs = results[mode]
    const added = runs.map((x) => x.addedUs)
    console.log(`${mode.padEnd(4)} api loaded: ${runs[0].apiLoaded}  added per notification: median ${median(added).toFixed(2)} µs ` +
      `(runs: ${added.map((x) => x.toFixed(2)).join(', ')}; unwrapped ${median(runs.map((x) => x.bareUs)).toFixed(2)} µs)`)
  }
}
