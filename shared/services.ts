/** The backend services every datacenter runs; the supervisor, stack.yml's test and /health agree on this list. */
export const serviceNames = ['web', 'images', 'releases', 'notifier'] as const
export type ServiceName = (typeof serviceNames)[number]
