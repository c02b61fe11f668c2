/**
 * The runbook's blocks that local/docker-swarm and the swarm drills run (docs/operations.md, marked
 * `<!-- runbook: <name> -->`): each is there, once, and is the command the runbook shows.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runbookBlocks, runRunbook, withLocalOverride } from '../../local/docker-swarm/runbook.ts'
import { productionCatalogue } from '../../local/docker-swarm/topology.ts'
import { nodeLabels } from '../../deploy/check/nodes.ts'
import { projectRoot } from '../../local/platform-specs.ts'

const used = [
  'swarm-init',
  'swarm-join',
  'swarm-join-worker',
  'label-node',
  'create-secrets',
  'nats-secrets',
  'origin-secrets',
  'deploy',
  'drain',
  'activate',
  'undrain',
  'rotate-discord-webhook',
]

describe('the runbook the drills run', () => {
  it('has every block the swarm and its drills use', () => {
    const blocks = runbookBlocks()
    for (const name of used) expect(blocks.get(name)?.trim(), name).toBeTruthy()
  })

  it('deploys with the runbook’s own command', () => {
    expect(runbookBlocks().get('deploy')).toMatch(
      /^docker stack deploy -c stack\.yml --with-registry-auth --prune vtta$/m
    )
  })

  it('takes its values from variables, not examples', () => {
    // A placeholder such as <fra1 public IP> outside a comment would be run as a shell redirection.
    const commands = (block: string) => block.replace(/(^|\s)#.*$/gm, '')
    for (const [name, block] of runbookBlocks()) expect(commands(block), name).not.toMatch(/<[a-z][^>]*>/)
  })

  it('refuses a name used twice, and finds a block after prettier’s blank line', () => {
    const block = '<!-- runbook: x -->\n\n```sh\necho 1\n```\n'
    expect(runbookBlocks(block).get('x')).toBe('echo 1\n')
    expect(() => runbookBlocks(block + block)).toThrow(/two runbook blocks named x/)
  })

  it('adds the local override to every stack deploy, and only there', () => {
    expect(withLocalOverride('docker stack deploy -c stack.yml vtta\ndocker stack services vtta')).toBe(
      'docker stack deploy -c stack.yml -c stack.local.yml vtta\ndocker stack services vtta'
    )
  })

  /**
   * Runs a block as written, in this checkout, against a stand-in `docker` that records its arguments:
   * the docker calls it made, and its error if it failed.
   */
  function recordedRun(block: string, env: Record<string, string>) {
    const dir = mkdtempSync(join(tmpdir(), 'vtta-runbook-'))
    const calls = join(dir, 'calls')
    writeFileSync(calls, '')
    writeFileSync(join(dir, 'docker'), `#!/bin/sh\necho "$*" >> '${calls}'\n`)
    chmodSync(join(dir, 'docker'), 0o755)
    const ctx = {
      dockerHost: 'unix:///nonexistent',
      cwd: projectRoot,
      env: { PATH: `${dir}:${process.env.PATH ?? ''}` },
    }
    let error: string | undefined
    try {
      runRunbook(block, ctx, env)
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
    }
    return { calls: readFileSync(calls, 'utf8').split('\n').filter(Boolean), error }
  }

  it("creates every production datacenter's NATS secret, however many the catalogue has", () => {
    const run = recordedRun('nats-secrets', { NATS_CREDENTIALS_DIR: '/creds' })
    expect(run.error).toBeUndefined()
    const created = run.calls.map((line) => line.split(' ').slice(2).join(' '))
    expect(created).toEqual(
      expect.arrayContaining(
        productionCatalogue().map((dc) => `nats_auth_${dc.id}_v1 /creds/auth-${dc.id}.conf`)
      )
    )
    expect(created.filter((c) => c.startsWith('nats_auth_'))).toHaveLength(productionCatalogue().length)
  })

  it("labels a node with its datacenter and the catalogue's region for it, read from the checkout", () => {
    for (const dc of productionCatalogue()) {
      expect(recordedRun('label-node', { DC: dc.id }), dc.id).toEqual({
        calls: [
          `node update --label-add dc=${dc.id} --label-add region=${dc.region} --label-add role=app --label-add nats=true ${dc.id}`,
        ],
        error: undefined,
      })
    }
  })

  it('gives each node the labels the deploy checks place the services by', () => {
    for (const dc of productionCatalogue()) {
      const [call = ''] = recordedRun('label-node', { DC: dc.id }).calls
      const labels = Object.fromEntries(
        [...call.matchAll(/--label-add ([^=\s]+)=(\S*)/g)].map(
          ([, key = '', value = '']) => [key, value] as const
        )
      )
      expect(labels, dc.id).toEqual(nodeLabels(dc.id, dc.region))
    }
  })

  it('refuses to label a node the catalogue does not know, and labels nothing', () => {
    const run = recordedRun('label-node', { DC: 'atl1' })
    expect(run.error).toMatch(/atl1 is no datacenter of the catalogue/)
    expect(run.calls).toEqual([])
  })
})
