// How a server process talks to the orchestrator, with no other import (the ceiling server loads nothing else).
// It prints `READY <port>` once listening; then on stdin `report` prints `REPORT <json>`, `stop` reports and exits,
// `profile-start` starts V8's CPU profiler and `profile-stop <file>` writes its profile there (each also reports).
//
// Every report carries the requests the server received (`requests`, aborted ones included) and is
// taken once they are all done: no request in flight and, when the server talks to a database, no
// write to it for 50 ms (a store may still be finishing a request whose client went away when the
// load stopped), at most 5 s. Round trips counted by the report then belong to the requests counted.
export function announce(server, { report = () => ({}), close = async () => {}, lastWriteAt } = {}) {
  process.stdout.write(`READY ${server.address().port}\n`)
  let requests = 0
  let inFlight = 0
  server.on('request', (req, res) => {
    requests += 1
    inFlight += 1
    res.once('close', () => { inFlight -= 1 })
  })
  const idle = async () => {
    const deadline = performance.now() + 5000
    const busy = () => inFlight > 0 || (lastWriteAt && performance.now() - lastWriteAt() < 50)
    while (busy() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  let session = null
  /** Starts the profiler, or stops it and writes the profile to `file` (profile.js reads it). */
  const profiler = async (what, file) => {
    const { Session } = await import('node:inspector')
    const post = (method) => new Promise((resolve, reject) => session.post(method, (err, result) => (err ? reject(err) : resolve(result))))
    if (what === 'start') {
      session = new Session()
      session.connect()
      await post('Profiler.enable')
      await post('Profiler.start')
      return
    }
    const { profile } = await post('Profiler.stop')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
  let buffered = ''
  process.stdin.setEncoding('utf8')
  // The orchestrator went away (a crash, Ctrl-C): do not linger.
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('data', async (chunk) => {
    buffered += chunk
    let nl
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const command = buffered.slice(0, nl).trim()
      buffered = buffered.slice(nl + 1)
      await idle()
      if (command === 'profile-start') await profiler('start')
      else if (command.startsWith('profile-stop ')) await profiler('stop', command.slice(13))
      const usage = process.resourceUsage()
      const body = { maxRssKb: usage.maxRSS, cpuUs: usage.userCPUTime + usage.systemCPUTime, requests, ...(await report()) }
      process.stdout.write(`REPORT ${JSON.stringify(body)}\n`)
      if (command === 'stop') {
        await close()
        server.closeAllConnections()
        server.close()
        process.exit(0)
      }
    }
  })
}
