import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
// Inside the repository, so the unpacked package resolves its dependencies from our node_modules.
const work = join(root, '.tmp', 'packaging')

const probe = (format: 'esm' | 'cjs') => {
  const load = format === 'esm'
    ? `import guanaitong, * as gat from 'express-guanaitong'
       import * as testing from 'express-guanaitong/testing'`
    : `const gat = require('express-guanaitong'); const guanaitong = gat.default
       const testing = require('express-guanaitong/testing')`
  return `${load}
    const example = { appid: '20110698', outer_trade_no: '1000000005', total_amount: '100.00',
      buyer_open_id: 'd87797eea12a2f80ad72ed93214a0908', trade_no: '2018070920000005', timestamp: '1531120153' }
    const router = guanaitong({ appId: '1', appSecret: 's', onPaid() {}, payPath: false })
    console.log(JSON.stringify({
      sign: gat.sign(example, 'secret123'),
      router: typeof router,
      named: gat.guanaitong === guanaitong,
      exports: ['createClient', 'verifySign', 'MemoryStore', 'RedisStore', 'RedisTokenCache', 'GatError',
        'parseNotification', 'verifyNotification', 'dedupeNotification', 'handleNotification'].filter((n) => !gat[n]),
      testing: ['createSandbox', 'signNotification', 'storeConformance'].filter((n) => typeof testing[n] !== 'function'),
    }))`
}

describe('packaging: the packed tarball', function () {
  this.timeout(60_000)
  let tarball: string

  before(() => {
    if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
    rmSync(work, { recursive: true, force: true })
    mkdirSync(join(work, 'node_modules', 'express-guanaitong'), { recursive: true })
    const name = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: root })
      .toString().trim().split('\n').pop()!
    tarball = join(work, name)
    execFileSync('tar', ['xzf', tarball, '-C', join(work, 'node_modules', 'express-guanaitong'), '--strip-components=1'])
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  for (const format of ['esm', 'cjs'] as const) {
    it(`loads from ${format === 'esm' ? 'an ESM' : 'a CommonJS'} file with every export, and signs the worked example`, () => {
      const file = join(work, format === 'esm' ? 'probe.mjs' : 'probe.cjs')
      writeFileSync(file, probe(format))
      const out = JSON.parse(execFileSync(process.execPath, [file], { cwd: work }).toString().trim().split('\n').pop()!)
      expect(out).to.deep.equal({ sign: '5ad48cf46541f84b9e5741dfac48227d40b322aa', router: 'function', named: true, exports: [], testing: [] })
    })
  }

  it('ships type declarations for both entries and formats, and nothing from src or test', () => {
    const list = execFileSync('tar', ['tzf', tarball]).toString()
    for (const file of ['index.d.ts', 'index.d.cts', 'testing/index.d.ts', 'testing/index.d.cts', 'cli.js']) {
      expect(list).to.contain(`package/dist/${file}`)
    }
    expect(list).to.not.match(/package\/(src|test)\//)
  })
})
