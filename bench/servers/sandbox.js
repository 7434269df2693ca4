// The sandbox (a fake Guanaitong) in its own process. Reports its counters and how many TCP
// connections it accepted, to check that callers reuse their sockets.
import { createSandbox } from '../../dist/testing/index.js'
import { APP_ID, APP_SECRET } from '../config.js'
import { announce } from './control.js'

const sandbox = createSandbox({ appId: APP_ID, appSecret: APP_SECRET })
await sandbox.start()
// `server` is private in the TypeScript types, but it is the node:http server the sandbox listens on.
const server = sandbox.server
let connections = 0
server.on('connection', () => { connections += 1 })
announce(server, { report: () => ({ connections, ...sandbox.stats }), close: () => sandbox.close() })
