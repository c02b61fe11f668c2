// Types `env` and `exports.default` from 'cloudflare:workers' in the edge tests.
type EdgeBindings = import('../../edge/env.ts').Bindings

declare namespace Cloudflare {
  interface Env extends EdgeBindings {}
  interface GlobalProps {
    mainModule: typeof import('../../edge/index.ts')
  }
}
