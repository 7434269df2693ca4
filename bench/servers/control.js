// How a server process talks to the orchestrator, with no other import (the ceiling server loads nothing else).
// It prints `READY <port>` once listening; then on stdin `report` prints `REPORT <json>`, `stop` reports and exits.
export function announce(server, report = () => ({}), close = async () => {}) {
  process.stdout.write(`READY ${server.address().port}\n`)
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
      const usage = process.resourceUsage()
      const body = { maxRssKb: usage.maxRSS, cpuUs: usage.userCPUTime + usage.systemCPUTime, ...(await report()) }
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
