/**
 * What a contributor relies on in a fresh clone: `npm run test:only` runs the files it is given
 * and no others, `npm install` leaves the lock as committed, and the test helpers fail when they
 * should.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { waitFor } from './helpers'

const run = promisify(execFile)
const root = new URL('..', import.meta.url)
const json = (file: string) => JSON.parse(readFileSync(new URL(file, root), 'utf8'))

describe('the repository', function () {
  this.timeout(60_000)

  /** `npm run test:only -- <args>`: the titles of the tests mocha ran. */
  async function testOnly(...args: string[]): Promise<string[]> {
    const { stdout } = await run('npm', ['run', '--silent', 'test:only', '--', '--reporter', 'json', ...args], { cwd: root })
    return (JSON.parse(stdout) as { tests: Array<{ title: string }> }).tests.map((t) => t.title)
  }

  it('npm run test:only runs exactly the files named (.mocharc.json would add the whole suite)', async () => {
    expect(await testOnly('test/fixtures/only-one.ts')).to.deep.equal(['fixture one'])
    expect(await testOnly('test/fixtures/only-one.ts', 'test/fixtures/only-two.ts')).to.deep.equal(['fixture one', 'fixture two'])
  })

  it('npm run test:only without a file fails instead of running anything', async () => {
    const failed = await run('npm', ['run', '--silent', 'test:only'], { cwd: root }).then(() => null, (err: { code?: number; stderr?: string }) => err)
    expect(failed?.code).to.equal(1)
    expect(failed?.stderr).to.contain('No test files found')
  })

  it("package-lock.json records package.json's dependencies as npm install writes them", () => {
    const pkg = json('package.json')
    const locked = json('package-lock.json').packages['']
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'peerDependenciesMeta']) {
      expect(locked[field], field).to.deep.equal(pkg[field])
    }
  })

  it('waitFor fails the test when the condition never holds', async () => {
    const error = await waitFor('nothing', () => false, { timeoutMs: 50 }).then(() => null, (err: Error) => err)
    expect(error?.message).to.equal('timed out after 50 ms waiting for nothing')
  })
})
