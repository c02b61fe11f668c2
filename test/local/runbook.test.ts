/**
 * The runbook's blocks that local/docker-swarm and the swarm drills run (docs/operations.md, marked
 * `<!-- runbook: <name> -->`): each is there, once, and is the command the runbook shows.
 */
import { describe, expect, it } from 'vitest'
import { runbookBlocks, withLocalOverride } from '../../local/docker-swarm/runbook.ts'

const used = [
  'swarm-init',
  'swarm-join',
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
})
