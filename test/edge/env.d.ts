// Types `env` from 'cloudflare:workers' in the edge tests: the Worker's generated bindings
// (edge/env.generated.d.ts, with `exports.default`), its secrets, and the test-only bindings.
type EdgeSecretBindings = import('../../edge/env.ts').SecretBindings

declare namespace Cloudflare {
  interface Env extends EdgeSecretBindings {
    /** Test-only binding: the fixture deliveries (see global-setup.ts). */
    GITHUB_DELIVERIES: string
    /** Test-only: the origin and the HTTP address of the `syd` image service (see global-setup.ts). */
    IMAGE_ORIGIN: string
    IMAGE_SERVICE: string
    /** Test-only: a web endpoint that accepts every request and never answers (see global-setup.ts). */
    SILENT_WEB: string
  }
}
