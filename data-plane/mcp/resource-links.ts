import type { Result } from '@modelcontextprotocol/sdk/types.js';
import { namespacedFeatureName } from '../../schema/snapshot/index.js';
import type { CompiledAssignment, CompiledGateway } from '../snapshot/compiled-snapshot.js';

/**
 * Resource links (`resource_link`) and embedded resources (`resource`) in a tool result or
 * in prompt messages carry the upstream's own URIs. Through the gateway a resource is read
 * by its namespaced URI (`conf+test://…`), so a link a client follows would name a resource
 * the gateway does not know. This renames each URI that is a resource of the same
 * assignment this gateway exposes (listed, or matched by one of its templates) to the name
 * clients read it by; any other URI (`https://…`, a resource the gateway does not serve) is
 * left as the upstream wrote it. An assignment without a prefix exposes upstream URIs
 * unchanged, so its results are returned as they are; so is a result with no such content
 * (one pass over its content blocks, nothing copied).
 */
export function exposeResourceLinks(method: string, result: Result, entry: CompiledAssignment, gateway: CompiledGateway): Result {
  if (entry.assignment.namespacePrefix === '') return result;
  if (method === 'tools/call') {
    const content = (result as { content?: unknown }).content;
    if (!Array.isArray(content) || !content.some(isResourceBlock)) return result;
    return { ...result, content: content.map((block: unknown) => renameBlock(block, entry, gateway)) };
  }
  if (method === 'prompts/get') {
    const messages = (result as { messages?: unknown }).messages;
    if (!Array.isArray(messages) || !messages.some((message) => isResourceBlock((message as { content?: unknown } | null)?.content))) return result;
    return {
      ...result,
      messages: messages.map((message: unknown) => {
        const content = (message as { content?: unknown } | null)?.content;
        return isResourceBlock(content) ? { ...(message as object), content: renameBlock(content, entry, gateway) } : message;
      }),
    };
  }
  return result;
}

function isResourceBlock(block: unknown): boolean {
  if (typeof block !== 'object' || block === null) return false;
  const type = (block as { type?: unknown }).type;
  return type === 'resource_link' || type === 'resource';
}

function renameBlock(block: unknown, entry: CompiledAssignment, gateway: CompiledGateway): unknown {
  if (!isResourceBlock(block)) return block;
  const record = block as { type: string; uri?: unknown; resource?: unknown };
  if (record.type === 'resource_link') {
    const exposed = typeof record.uri === 'string' ? exposedUri(record.uri, entry, gateway) : undefined;
    return exposed === undefined ? block : { ...record, uri: exposed };
  }
  const resource = record.resource as { uri?: unknown } | null | undefined;
  const exposed = typeof resource?.uri === 'string' ? exposedUri(resource.uri, entry, gateway) : undefined;
  return exposed === undefined ? block : { ...record, resource: { ...resource, uri: exposed } };
}

/** The URI clients read an upstream resource of `entry` by, when this gateway exposes it. */
function exposedUri(upstreamUri: string, entry: CompiledAssignment, gateway: CompiledGateway): string | undefined {
  const feature = entry.byUpstreamName.resources.get(upstreamUri);
  if (feature !== undefined && gateway.features.resources.get(feature.name)?.entry === entry) return feature.name;
  const candidate = namespacedFeatureName('resources', entry.assignment.namespacePrefix, upstreamUri);
  for (const matcher of gateway.templateMatchers) {
    if (matcher.exposed.entry === entry && matcher.pattern.test(candidate)) return candidate;
  }
  return undefined;
}
