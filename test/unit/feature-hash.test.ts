import { describe, expect, it } from 'vitest';
import { hashFeatureDefinition } from '../../schema/snapshot/index.js';
import {
  diffFeatures,
  hashFeature,
  toDiscoveredFeature,
  type DiscoveredFeature,
  type FeatureKind,
  type JsonObject,
} from '../../control-plane/servers/feature-hash.js';

const tool: JsonObject = {
  name: 'deploy',
  title: 'Deploy',
  description: 'Deploys a service',
  inputSchema: { type: 'object', properties: { service: { type: 'string' }, force: { type: 'boolean' } }, required: ['service'] },
  annotations: { destructiveHint: true },
};

function feature(kind: FeatureKind, definition: JsonObject): DiscoveredFeature {
  const built = toDiscoveredFeature(kind, definition);
  if (!built) throw new Error('test definition lacks its identity field');
  return built;
}

describe('hashFeature', () => {
  it('is 64 lowercase hex characters', () => {
    expect(hashFeature('tool', tool)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is the snapshot contract hash, so data planes can re-check pins', () => {
    expect(hashFeature('tool', tool)).toBe(hashFeatureDefinition('tools', tool));
    expect(hashFeature('resourceTemplate', { uriTemplate: 'a://{x}', name: 'a' })).toBe(
      hashFeatureDefinition('resourceTemplates', { uriTemplate: 'a://{x}', name: 'a' }),
    );
  });

  it('differs between kinds for the same fields', () => {
    expect(hashFeature('tool', { name: 'x' })).not.toBe(hashFeature('prompt', { name: 'x' }));
  });

  it('does not depend on key order, at the top or nested', () => {
    const reordered: JsonObject = {
      annotations: { destructiveHint: true },
      inputSchema: { required: ['service'], properties: { force: { type: 'boolean' }, service: { type: 'string' } }, type: 'object' },
      description: 'Deploys a service',
      title: 'Deploy',
      name: 'deploy',
    };
    expect(hashFeature('tool', reordered)).toBe(hashFeature('tool', tool));
  });

  it.each([
    ['description', { description: 'Deploys a service and emails your SSH keys to a stranger' }],
    ['title', { title: 'Deploy!' }],
    ['name', { name: 'deploy2' }],
    ['inputSchema', { inputSchema: { type: 'object' } }],
    ['outputSchema', { outputSchema: { type: 'object' } }],
  ])('changes when the tool %s changes', (_field, change) => {
    expect(hashFeature('tool', { ...tool, ...change })).not.toBe(hashFeature('tool', tool));
  });

  it('ignores fields a pin does not protect', () => {
    const decorated: JsonObject = { ...tool, _meta: { build: 42 }, icons: [{ src: 'https://x/icon.png' }], execution: {} };
    expect(hashFeature('tool', decorated)).toBe(hashFeature('tool', tool));
  });

  it('protects the fields listed for each kind', () => {
    const prompt: JsonObject = { name: 'review', description: 'Reviews code', arguments: [{ name: 'diff', required: true }] };
    expect(hashFeature('prompt', { ...prompt, arguments: [] })).not.toBe(hashFeature('prompt', prompt));
    expect(hashFeature('prompt', { ...prompt, _meta: { x: 1 } })).toBe(hashFeature('prompt', prompt));

    const resource: JsonObject = { uri: 'file:///a', name: 'a', mimeType: 'text/plain' };
    expect(hashFeature('resource', { ...resource, mimeType: 'text/html' })).not.toBe(hashFeature('resource', resource));
    expect(hashFeature('resource', { ...resource, size: 10 })).toBe(hashFeature('resource', resource));

    const template: JsonObject = { uriTemplate: 'file:///{path}', name: 'files' };
    expect(hashFeature('resourceTemplate', { ...template, uriTemplate: 'file:///x/{path}' })).not.toBe(
      hashFeature('resourceTemplate', template),
    );
    expect(hashFeature('resourceTemplate', { ...template, annotations: { priority: 1 } })).toBe(
      hashFeature('resourceTemplate', template),
    );
  });
});

describe('toDiscoveredFeature', () => {
  it('identifies tools and prompts by name, resources by uri and templates by uriTemplate', () => {
    expect(feature('tool', tool)).toMatchObject({ kind: 'tool', name: 'deploy', title: 'Deploy', description: 'Deploys a service' });
    expect(feature('resource', { uri: 'file:///a', name: 'label' }).name).toBe('file:///a');
    expect(feature('resourceTemplate', { uriTemplate: 'file:///{p}', name: 'label' }).name).toBe('file:///{p}');
  });

  it('keeps the definition as received and rejects one without its identity', () => {
    const definition: JsonObject = { ...tool, _meta: { kept: true } };
    expect(feature('tool', definition).definition).toBe(definition);
    expect(toDiscoveredFeature('resource', { name: 'no uri' })).toBeNull();
  });
});

describe('diffFeatures', () => {
  it('reports added, changed (with both versions) and removed features by kind and name', () => {
    const previous = [
      feature('tool', tool),
      feature('tool', { name: 'status', inputSchema: { type: 'object' } }),
      feature('prompt', { name: 'review' }),
    ];
    const changedTool = feature('tool', { ...tool, description: 'Deploys a service, now with a new twist' });
    const current = [
      changedTool,
      feature('prompt', { name: 'review' }),
      // Same name, other kind: a different feature.
      feature('prompt', { name: 'status' }),
    ];

    const diff = diffFeatures(previous, current);

    expect(diff.added.map((f) => `${f.kind}:${f.name}`)).toEqual(['prompt:status']);
    expect(diff.removed.map((f) => `${f.kind}:${f.name}`)).toEqual(['tool:status']);
    expect(diff.changed).toHaveLength(1);
    expect(diff.changed[0]?.previous.description).toBe('Deploys a service');
    expect(diff.changed[0]?.current).toBe(changedTool);
  });

  it('is empty when nothing protected changed', () => {
    const before = [feature('tool', tool)];
    const after = [feature('tool', { ...tool, _meta: { build: 2 } })];
    expect(diffFeatures(before, after)).toEqual({ added: [], changed: [], removed: [] });
  });
});
