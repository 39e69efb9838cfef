import { createPubSub, type PubSub } from 'graphql-yoga';
import type { Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import { WORKSPACE_EVENTS_CHANNEL, toWorkspaceEvent, type WorkspaceEvent } from './workspace-events.js';

type Topics = { workspaceEvent: [workspaceId: string, event: WorkspaceEvent] };

/**
 * Fans committed workspace events out to this process's subscribers. Events reach it
 * through LISTEN, so a change committed by any control-plane process on the same database
 * is delivered here too.
 */
export class EventBus {
  private readonly pubsub: PubSub<Topics> = createPubSub<Topics>();
  private unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly database: Database,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.database.listen(WORKSPACE_EVENTS_CHANNEL, (payload) => {
      void this.dispatch(payload).catch((err) => this.logger.error({ err }, 'workspace event dispatch failed'));
    });
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = undefined;
  }

  /** Events of one workspace, as they commit, until the consumer stops iterating. */
  subscribe(workspaceId: string): AsyncIterable<WorkspaceEvent> {
    return this.pubsub.subscribe('workspaceEvent', workspaceId);
  }

  private async dispatch(payload: string): Promise<void> {
    const parsed = JSON.parse(payload) as WorkspaceEvent & { truncated?: boolean };
    let event: WorkspaceEvent = { ...parsed, createdAt: new Date(parsed.createdAt) };
    if (parsed.truncated) {
      const row = await this.database.db
        .selectFrom('workspace_events')
        .selectAll()
        .where('workspace_id', '=', parsed.workspaceId)
        .where('id', '=', parsed.id)
        .executeTakeFirst();
      if (!row) return;
      event = toWorkspaceEvent(row);
    }
    this.pubsub.publish('workspaceEvent', event.workspaceId, event);
  }
}
