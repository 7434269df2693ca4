/**
 * The package as a user gets it: `npm pack` run in a fresh copy of the repository (its tracked
 * and new files, no dist/, so `prepack` must build), unpacked into a scratch project's
 * node_modules. Built once per test run and shared by the packaging and README tests.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

export const root = resolve(import.meta.dirname, '..')
/** Inside the repository, so the scratch project resolves express, supertest and @types from our node_modules. */
export const scratch = join(root, '.tmp', 'packaging')

export interface Packed {
  /** The .tgz file. */
  tarball: string
  /** Every path in the tarball, without the leading `package/`, sorted. */
  files: string[]
  /** Where the unpacked package lives: `<scratch>/node_modules/express-guanaitong`. */
  installed: string
}

let packing: Packed | undefined

function pack(): Packed {
  rmSync(scratch, { recursive: true, force: true })
  const clone = join(scratch, 'clone')
  mkdirSync(clone, { recursive: true })
  // Its own package scope: under the repository's package.json, Node would resolve
  // `express-guanaitong` from a probe here to the repository itself (a package may import its own
  // name), and the probes would test the working tree's dist/, not the packed package.
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'packaging-scratch', private: true }))
  const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: root })
    .toString().split('\0').filter(Boolean)
    // A worktree whose node_modules is a symlink lists it as an untracked file (`node_modules/` ignores directories only).
    .filter((file) => file !== 'node_modules')
  for (const file of tracked) {
    mkdirSync(dirname(join(clone, file)), { recursive: true })
    cpSync(join(root, file), join(clone, file), { errorOnExist: false, force: true })
  }
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir')
  // No --ignore-scripts: prepack builds dist/ in the copy, as on a fresh clone.
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: clone, stdio: ['ignore', 'pipe', 'pipe'] })
    .toString().trim().split('\n').pop()!
  const tarball = join(scratch, name)
  const files = execFileSync('tar', ['tzf', tarball]).toString().split('\n').filter(Boolean)
    .map((f) => f.replace(/^package\//, '')).sort()
  const installed = join(scratch, 'node_modules', 'express-guanaitong')
  mkdirSync(installed, { recursive: true })
  execFileSync('tar', ['xzf', tarball, '-C', installed, '--strip-components=1'])
  rmSync(clone, { recursive: true, force: true })
  return { tarball, files, installed }
}

/** The packed and installed package; packs on the first call (a build: allow a few minutes). */
export function packed(): Packed {
  packing ??= pack()
  return packing
}
