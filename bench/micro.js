// Micro-benchmarks, run as `node --expose-gc bench/micro.js`; prints one JSON line.
// - sign / verifySign of a typical notification, operations per second;
// - MemoryStore holding 1 000 000 done-markers: heap used (after gc) and its maxEntries bound.
import { MemoryStore, sign, verifySign } from '../dist/index.js'
import { APP_ID, APP_SECRET } from './config.js'
import { notification } from './common.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')

/** Runs `fn` for about `ms` (after a short warmup), returns calls per second. */
function opsPerSec(fn, ms = 1500) {
  for (let i = 0; i < 20_000; i++) fn(i)
  let calls = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let i = 0; i < 1000; i++) fn(calls++)
    elapsed = performance.now() - start
  }
  return Math.round(calls / (elapsed / 1000))
}

const fields = notification('B2511250000123')
const unsigned = { ...fields }
delete unsigned.sign
let sink = 0
const signOps = opsPerSec(() => { sink += sign(unsigned, APP_SECRET).length })
const verifyOps = opsPerSec(() => { if (verifySign(fields, APP_SECRET)) sink += 1 })
if (!verifySign(fields, APP_SECRET)) throw new Error('the notification does not verify')

const heap = () => {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

const ENTRIES = 1_000_000
const EXTRA = 10_000
const key = (i) => `${APP_ID}:paid:B25112500${String(i).padStart(7, '0')}`
const before = heap()
// The 10 000 evictions below are each logged as a warning: not timed here, and kept off stderr.
const store = new MemoryStore({ maxEntries: ENTRIES, logger: { warn() {}, error() {} } })
const fillStart = performance.now()
for (let i = 0; i < ENTRIES; i++) {
  const claim = await store.claim(key(i))
  await store.complete(key(i), claim.owner)
}
const fillMs = performance.now() - fillStart
const heapDelta = heap() - before
const sizeFull = store.size

// The bound: 10 000 more keys evict the 10 000 oldest done-markers, and only those.
for (let i = ENTRIES; i < ENTRIES + EXTRA; i++) {
  const claim = await store.claim(key(i))
  await store.complete(key(i), claim.owner)
}
const sizeAfter = store.size
const oldestGone = (await store.claim(key(EXTRA - 1))).status === 'claimed'
const keptDone = (await store.claim(key(EXTRA + 1))).status === 'done'
const newestDone = (await store.claim(key(ENTRIES + EXTRA - 1))).status === 'done'

process.stdout.write(`${JSON.stringify({
  signOpsPerSec: signOps,
  verifyOpsPerSec: verifyOps,
  fieldCount: Object.keys(fields).length,
  memoryStore: {
    entries: ENTRIES,
    heapDeltaMb: Math.round((heapDelta / 1048576) * 10) / 10,
    bytesPerEntry: Math.round(heapDelta / ENTRIES),
    fillMs: Math.round(fillMs),
    sizeFull,
    extraKeys: EXTRA,
    sizeAfterExtra: sizeAfter,
    oldestEvicted: oldestGone,
    olderStillDone: keptDone,
    newestDone,
    boundHonoured: sizeFull === ENTRIES && sizeAfter <= ENTRIES && oldestGone && keptDone && newestDone,
  },
  sink: sink > 0,
})}\n`)
