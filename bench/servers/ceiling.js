// Ceiling: raw node:http, reads the body and answers `success`. Nothing can be faster on this machine.
import { createServer } from 'node:http'
import { announce } from './control.js'

const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 7 })
    res.end('success')
  })
})
server.listen(0, '127.0.0.1', () => announce(server))
