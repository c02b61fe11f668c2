// Types `env` and `exports.default` from 'cloudflare:workers' in the edge tests.
type EdgeBindings = import('../../edge/env.ts').Bindings

declare namespace Cloudflare {
  interface Env extends EdgeBindings {
    /** Test-only binding: the fixture deliveries (see global-setup.ts). */
    GITHUB_DELIVERIES: string
    /** Test-only: the origin and the HTTP address of the `syd` image service (see global-setup.ts). */
    IMAGE_ORIGIN: string
    IMAGE_SERVICE: string
    /** Test-only: a web endpoint that accepts every request and never answers (see global-setup.ts). */
    SILENT_WEB: string
  }
  interface GlobalProps {
    mainModule: typeof import('../../edge/index.ts')
  }
}
