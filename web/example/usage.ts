// Type-checked by `npm run typecheck` (tsc --noEmit): how an application
// uses @groupcast/client, resolved through the package's exports map.
import { ApiClient, ApiError, RealtimeClient, type GroupcastEvent, type Post } from '@groupcast/client';

const getToken = async (): Promise<string> => {
  const res = await fetch('http://127.0.0.1:3002/token', {
    method: 'POST',
    body: JSON.stringify({ sub: 'alice', name: 'Alice' }),
  });
  return ((await res.json()) as { token: string }).token;
};

export async function main(): Promise<void> {
  const api = new ApiClient({ baseUrl: 'http://127.0.0.1:3000/dev', getToken });
  const live = new RealtimeClient({ url: 'ws://127.0.0.1:3001/dev', getToken, backoff: { baseMs: 250, capMs: 10_000 } });

  live.on('group.post_created', (e) => {
    const preview: string = e.data.contentPreview;
    const group: string = e.groupId;
    console.log(group, preview);
  });
  live.on('group.member_joined', (e) => console.log(e.data.memberCount + 1));
  live.on('*', (e) => {
    if (e.type === 'invitation.received') console.log(e.data.inviterName);
  });
  live.on('state', ({ state, previous }) => console.log(previous, '→', state));
  live.on('resync', () => void api.listNotifications());

  const reply = await live.subscribe(['*', 'public']);
  for (const r of reply.rejected) console.log(r.groupId, r.reason);

  const group = await api.createGroup({ name: 'Hikers', visibility: 'public' });
  const posts: Post[] = (await api.listPosts(group.groupId, { limit: 20 })).items;
  try {
    await api.createPost(group.groupId, 'hello');
  } catch (err) {
    if (err instanceof ApiError && err.status === 429) console.log('retry in', err.retryAfter ?? 1, 's');
  }
  const inbox = await api.listNotifications();
  await api.markNotificationsRead({ ids: inbox.items.filter((n) => !n.read).map((n) => n.id) });
  await api.markNotificationsRead({ all: true });
  console.log(posts.length, inbox.unreadCount);
  await live.unsubscribe([group.groupId]);
  live.close();
}

// @ts-expect-error an unknown event type is refused
new RealtimeClient({ url: '', getToken }).on('group.nope', () => {});

export function onlyPosts(e: GroupcastEvent<'group.post_created'>): string {
  // @ts-expect-error post events have no memberCount
  return e.data.memberCount;
}
