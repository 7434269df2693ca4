/**
 * Child processes the tests start (shop instances, redis-servers). Each group kills what it
 * started, by its own handle, from the tests' after hooks; and every group is killed when the
 * test process exits (mocha runs with `exit: true`, and exits on SIGINT) or gets SIGTERM.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { sleep } from './helpers'

const groups = new Set<ProcessGroup>()

function killEveryGroupNow(): void {
  for (const group of groups) group.killNow()
}
process.on('exit', killEveryGroupNow)
// SIGTERM's default action ends the process without the 'exit' event.
process.once('SIGTERM', () => {
  killEveryGroupNow()
  process.exit(143)
})

/** Sends `signal` to one child (SIGKILL by default) and waits for it to be gone. */
export async function killChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  await Promise.race([exited, sleep(5000)])
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await exited
  }
}

/** Processes started together and killed together. */
export class ProcessGroup {
  private readonly children = new Set<ChildProcess>()

  constructor() {
    groups.add(this)
  }

  spawn(command: string, args: string[], options: SpawnOptions): ChildProcess {
    const child = spawn(command, args, options)
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    // A missing binary is reported by the caller's wait for the process, not as an uncaught error.
    child.once('error', () => this.children.delete(child))
    return child
  }

  /** Every process of this group that is still running, killed and waited for. */
  async killAll(): Promise<void> {
    await Promise.all([...this.children].map((child) => killChild(child)))
  }

  /** SIGKILL to each, without waiting: for the exit hook, which cannot wait. */
  killNow(): void {
    for (const child of this.children) {
      try {
        child.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}
