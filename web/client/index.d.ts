// Types of @groupcast/client. Hand-written: the package is plain ES modules
// with no build step. The wire shapes follow the README's REST, WebSocket
// and Events sections.

// ---------------------------------------------------------------------------
// Events: the one place the event envelope is typed. Live pushes, replays
// after a reconnect and inbox items share it (the inbox adds `read`).
// ---------------------------------------------------------------------------

/** The data of each event type, by type. */
export interface EventDataMap {
  'group.post_created': {
    postId: string;
    authorId: string;
    authorName: string;
    /** The first 100 characters, with "…" when cut. */
    contentPreview: string;
    createdAt: string;
  };
  'group.member_joined': { userId: string; displayName: string; memberCount: number };
  'group.member_left': { userId: string; displayName: string; memberCount: number };
  'group.created': Group;
  'invitation.received': {
    invitationId: string;
    groupId: string;
    groupName: string;
    inviterId: string;
    inviterName: string;
    createdAt: string;
  };
  'invitation.accepted': InvitationAnswerData;
  'invitation.declined': InvitationAnswerData;
}

export interface InvitationAnswerData {
  invitationId: string;
  groupId: string;
  groupName: string;
  inviteeId: string;
  answeredAt: string;
}

export type EventType = keyof EventDataMap;

/** The envelope of every pushed event. */
export interface GroupcastEvent<T extends EventType = EventType> {
  /** Stable per logical change: a redelivery carries the same id. */
  id: string;
  type: T;
  groupId: string;
  /** RFC 3339. */
  at: string;
  data: EventDataMap[T];
  /** The stream the event is kept in: "group:<groupId>", "user" (the caller's own) or "public". */
  stream: StreamName;
  /** Its place in the stream, opaque (a ULID; later events usually sort higher). */
  position: string;
}

export type StreamName = `group:${string}` | 'user' | 'public';

/** Any event, discriminated by type. */
export type AnyEvent = { [T in EventType]: GroupcastEvent<T> }[EventType];

/** An inbox entry (GET /notifications): the event's envelope plus `read`. */
export type Notification<T extends EventType = EventType> = GroupcastEvent<T> & { read: boolean };

// ---------------------------------------------------------------------------
// REST resources
// ---------------------------------------------------------------------------

export type Visibility = 'public' | 'private';

export interface Group {
  groupId: string;
  name: string;
  description: string;
  visibility: Visibility;
  ownerId: string;
  memberCount: number;
  createdAt: string;
}

export interface Member {
  groupId: string;
  userId: string;
  displayName: string;
  role: 'owner' | 'member';
  joinedAt: string;
}

export interface Post {
  postId: string;
  groupId: string;
  authorId: string;
  authorName: string;
  content: string;
  createdAt: string;
}

export type InvitationStatus = 'pending' | 'accepted' | 'declined';

export interface Invitation {
  invitationId: string;
  groupId: string;
  groupName: string;
  inviteeId: string;
  inviterId: string;
  inviterName: string;
  status: InvitationStatus;
  createdAt: string;
  /** Absent while pending. */
  answeredAt?: string;
}

export interface Page<T> {
  items: T[];
  /** Absent or empty on the last page. */
  nextCursor?: string;
}

export interface NotificationPage extends Page<Notification> {
  unreadCount: number;
}

export interface InviteResult {
  invitations: Invitation[];
  skipped: { userId: string; reason: 'self' | 'already_member' | 'already_invited' }[];
}

export interface PageOptions {
  /** 1–100, default 20. */
  limit?: number;
  cursor?: string;
}

/** Resolves to a JWT. Called again whenever a new token is needed. */
export type TokenProvider = () => Promise<string>;

export interface ApiOptions {
  /** The HTTP API's base URL including the stage, e.g. https://x.execute-api.eu-west-1.amazonaws.com/prod */
  baseUrl: string;
  getToken: TokenProvider;
  fetch?: typeof fetch;
  now?: () => number;
}

export type ErrorCode =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'internal'
  | (string & {});

/** A non-2xx answer, from the {"error":{"code","message"}} envelope. */
export class ApiError extends Error {
  readonly name: 'ApiError';
  readonly status: number;
  readonly code: ErrorCode;
  /** The server's message. */
  readonly detail: string;
  /** Seconds to wait before retrying, from Retry-After (429). */
  readonly retryAfter: number | undefined;
  constructor(status: number, code: string, message: string, retryAfter: number | undefined);
}

export function parseRetryAfter(value: string | null | undefined, now?: number): number | undefined;

export class ApiClient {
  constructor(options: ApiOptions);
  listGroups(options?: PageOptions & { scope?: 'mine' | 'public' }): Promise<Page<Group>>;
  createGroup(input: { name: string; description?: string; visibility?: Visibility }): Promise<Group>;
  getGroup(groupId: string): Promise<Group>;
  joinGroup(groupId: string): Promise<Member>;
  leaveGroup(groupId: string): Promise<void>;
  listMembers(groupId: string, options?: PageOptions): Promise<Page<Member>>;
  /** Newest first; after: only posts newer than that postId. */
  listPosts(groupId: string, options?: PageOptions & { after?: string }): Promise<Page<Post>>;
  createPost(groupId: string, content: string): Promise<Post>;
  invite(groupId: string, userIds: string[]): Promise<InviteResult>;
  listInvitations(options?: { status?: InvitationStatus }): Promise<{ items: Invitation[] }>;
  acceptInvitation(groupId: string): Promise<Invitation>;
  declineInvitation(groupId: string): Promise<Invitation>;
  listNotifications(options?: PageOptions): Promise<NotificationPage>;
  markNotificationsRead(which: { ids: string[] } | { all: true }): Promise<void>;
  /** Any other call: body sent as JSON, 2xx JSON returned (undefined for 204). */
  request<T = unknown>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<T>;
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed';

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
}

export interface SubscribedReply {
  type: 'subscribed';
  requestId?: string;
  groupIds: string[];
  rejected: { groupId: string; reason: 'not_found' | 'limit' | 'invalid' | (string & {}) }[];
  /** Per stream the message gave a position for: whether what came after it was replayed. */
  recovered: Record<string, boolean>;
  /** A position to resume from for each stream that had none or did not recover. */
  positions: Record<string, string>;
}

export interface ResumedReply {
  type: 'resumed';
  requestId?: string;
  recovered: Record<string, boolean>;
  positions: Record<string, string>;
}

export interface UnsubscribedReply {
  type: 'unsubscribed';
  requestId?: string;
  groupIds: string[];
}

/** Why the application should reload its state through REST. */
export interface Resync {
  /** not_recovered: the server could not replay `streams`; reconnected: it could not say what was missed. */
  reason: 'not_recovered' | 'reconnected';
  /** The streams to reload ([] with reason reconnected: reload everything). */
  streams: string[];
}

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export interface WebSocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface EventTargetLike {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
}

export interface RealtimeOptions {
  /** ws:// or wss:// URL of the stage, e.g. wss://x.execute-api.eu-west-1.amazonaws.com/prod */
  url: string;
  /** Called for every new connection (reconnect, rotation before token expiry or the 2-hour limit). */
  getToken: TokenProvider;
  /** Backoff bounds: the n-th retry waits a random time in [0, min(capMs, baseMs·2^n)]. */
  backoff?: { baseMs?: number; capMs?: number };
  keepAliveMs?: number;
  pongTimeoutMs?: number;
  maxConnectionAgeMs?: number;
  rotateBeforeMs?: number;
  tokenRefreshMarginMs?: number;
  minRotateAfterMs?: number;
  requestTimeoutMs?: number;
  dedupeSize?: number;
  /** For tests and other runtimes. */
  WebSocket?: new (url: string) => WebSocketLike;
  clock?: Clock;
  random?: () => number;
  /** Source of online/offline (and navigator.onLine); null to ignore. Default: window. */
  window?: (EventTargetLike & { navigator?: { onLine?: boolean } }) | null;
  /** Source of visibilitychange; null to ignore. Default: document. */
  document?: (EventTargetLike & { visibilityState?: string }) | null;
}

export const DEFAULTS: Readonly<Required<Pick<RealtimeOptions,
  'keepAliveMs' | 'pongTimeoutMs' | 'maxConnectionAgeMs' | 'rotateBeforeMs' | 'tokenRefreshMarginMs' | 'minRotateAfterMs' | 'requestTimeoutMs' | 'dedupeSize'>>>;

export class RealtimeClient {
  constructor(options: RealtimeOptions);
  readonly state: ConnectionState;
  /** The ids resubscribed after every reconnect. */
  readonly subscriptions: string[];
  connect(): void;
  on<T extends EventType>(type: T, fn: (event: GroupcastEvent<T>) => void): () => void;
  on(type: '*', fn: (event: AnyEvent) => void): () => void;
  on(type: 'state', fn: (change: StateChange) => void): () => void;
  on(type: 'resync', fn: (info: Resync) => void): () => void;
  on(type: 'error', fn: (err: unknown) => void): () => void;
  off(type: string, fn: (arg: any) => void): void;
  /** '*': all the caller's groups; 'public': new public groups. Starts connecting if idle. */
  subscribe(groupIds: string[]): Promise<SubscribedReply>;
  unsubscribe(groupIds: string[]): Promise<UnsubscribedReply>;
  close(): void;
}

/** The highest position seen per stream, sent on every (re)subscribe. */
export class StreamPositions {
  observe(event: { stream?: unknown; position?: unknown }): void;
  adopt(reply: { positions?: unknown; recovered?: unknown }): void;
  forSubscribe(): Record<string, string> | undefined;
  /** null: nothing to reload; else the streams to reload ([]: everything). */
  needsResync(reply: { recovered?: unknown; positions?: unknown }, afterGap: boolean, sent: Record<string, string> | undefined): string[] | null;
  reset(): void;
}

export class RecentIds {
  constructor(capacity: number);
  readonly capacity: number;
  readonly size: number;
  /** Records id; true when it was already there. */
  seen(id: string): boolean;
}

export const DEFAULT_BACKOFF: { baseMs: number; capMs: number };
export function backoffCeiling(attempt: number, bounds: { baseMs: number; capMs: number }): number;
export function backoffDelay(attempt: number, bounds: { baseMs: number; capMs: number }, random?: () => number): number;
/** exp of a JWT in ms since the epoch (not verified). */
export function tokenExpiry(token: string): number | undefined;
