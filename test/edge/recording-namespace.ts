/**
 * A Durable Object namespace that records what it is asked for and forwards every call: pass it in the
 * env of `worker.fetch` in place of the real binding, and a test sees which objects the edge asks for
 * by name, and with which options (the location hint). Where the object then runs is not observable
 * in a test: one workerd process has no locations, so only the request can be asserted.
 */

/** One `getByName` call: the name and the options as the edge passed them. */
export interface NamespaceCall {
  name: string
  options: DurableObjectNamespaceGetDurableObjectOptions | undefined
}

export function recordingNamespace<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>
): { namespace: DurableObjectNamespace<T>; calls: NamespaceCall[] } {
  const calls: NamespaceCall[] = []
  const recording = new Proxy(namespace, {
    get(target, property) {
      if (property === 'getByName')
        return (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
          calls.push({ name, options })
          return target.getByName(name, options)
        }
      // The binding's other methods need the binding itself as `this`, not the proxy.
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
  return { namespace: recording, calls }
}
