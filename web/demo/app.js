// The demo of the original screens, on @groupcast/client only: no framework,
// no build step. devstack serves it with the client at /client/ and its
// endpoints at ./config.json.
import { ApiClient, ApiError, RealtimeClient } from '/client/index.js';

const $ = (sel) => document.querySelector(sel);
const config = await (await fetch('./config.json')).json();

// How long a toast stays: long enough to read a post preview.
const TOAST_MS = 6000;

let me = null; // {sub, name}
let api = null;
let live = null;
let current = null; // the open group
const groups = new Map(); // groupId -> group (mine and public)
const mine = new Set();
let inbox = { items: [], unreadCount: 0 };
let resyncs = 0; // reloads asked for by the client (data-resyncs, for the browser tests)

// ---- sign-in ----

$('#user-select').addEventListener('change', (e) => {
  $('#user-id').hidden = e.target.value !== '';
});

$('#signin').addEventListener('submit', (e) => {
  e.preventDefault();
  let [sub, name] = $('#user-select').value.split('|');
  if (!sub) {
    sub = $('#user-id').value.trim();
    name = sub;
  }
  if (sub) signIn(sub, name);
});

/** Development tokens from devstack's issuer; called again for every new token. */
function tokenProvider(sub, name) {
  return async () => {
    const res = await fetch(config.tokens, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub, name }),
    });
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    return (await res.json()).token;
  };
}

async function signIn(sub, name) {
  live?.close();
  me = { sub, name };
  const getToken = tokenProvider(sub, name);
  api = new ApiClient({ baseUrl: config.httpApi, getToken });
  live = new RealtimeClient({ url: config.webSocket, getToken });
  window.groupcast = live; // for the browser tests and curious developers
  live.on('state', ({ state }) => {
    const el = $('#state');
    el.textContent = state;
    el.dataset.state = state;
  });
  live.on('group.post_created', onPost);
  live.on('group.member_joined', onMembers);
  live.on('group.member_left', onMembers);
  live.on('group.created', onGroupCreated);
  live.on('invitation.received', onInvitation);
  live.on('invitation.accepted', onAnswer);
  live.on('invitation.declined', onAnswer);
  // Missed events are replayed after a reconnect; only when the server
  // could not (retention passed, too many, a stream begun in the gap) does
  // the page reload what its screens show.
  live.on('resync', () => {
    document.body.dataset.resyncs = String(++resyncs);
    reloadAll().catch(showError);
  });
  // Every event once (the client drops repeats by id), live or replayed.
  live.on('*', logActivity);
  live.on('error', (err) => console.warn('groupcast:', err));

  $('#me').textContent = `${name} (${sub})`;
  $('#app').hidden = false;
  $('#inbox-button').hidden = false;
  current = null;
  $('#group').hidden = true;
  $('#no-group').hidden = false;
  $('#answers').replaceChildren();
  $('#activity').replaceChildren();
  // Subscribe first, then load: an event between the two is shown twice at
  // worst (de-duplicated by id), never missed.
  await live.subscribe(['*', 'public']).catch(showError);
  await reloadAll().catch(showError);
  document.body.dataset.ready = sub;
}

async function reloadAll() {
  const [m, p] = await Promise.all([api.listGroups({ scope: 'mine', limit: 100 }), api.listGroups({ scope: 'public', limit: 100 })]);
  groups.clear();
  mine.clear();
  for (const g of p.items) groups.set(g.groupId, g);
  for (const g of m.items) {
    groups.set(g.groupId, g);
    mine.add(g.groupId);
  }
  renderGroups();
  await Promise.all([loadInvitations(), loadInbox(), current ? openGroup(current.groupId) : null]);
}

// ---- groups ----

function renderGroups() {
  const item = (g, withJoin) => {
    const li = document.createElement('li');
    li.dataset.groupId = g.groupId;
    if (current?.groupId === g.groupId) li.className = 'active';
    const a = document.createElement('a');
    a.textContent = g.name;
    a.addEventListener('click', () => openGroup(g.groupId).catch(showError));
    const count = document.createElement('span');
    count.className = 'muted count';
    count.textContent = `${g.memberCount} · ${g.visibility}`;
    li.append(a, count);
    if (withJoin) {
      const b = document.createElement('button');
      b.textContent = 'Join';
      b.className = 'join';
      b.addEventListener('click', () => join(g.groupId).catch(showError));
      li.append(b);
    }
    return li;
  };
  const sorted = [...groups.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  $('#my-groups').replaceChildren(...sorted.filter((g) => mine.has(g.groupId)).map((g) => item(g, false)));
  $('#public-groups').replaceChildren(
    ...sorted.filter((g) => g.visibility === 'public').map((g) => item(g, !mine.has(g.groupId))),
  );
}

$('#create-group').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    const g = await api.createGroup({ name: f.get('name'), description: f.get('description'), visibility: f.get('visibility') });
    e.target.reset();
    groups.set(g.groupId, g);
    mine.add(g.groupId);
    // "*" covers only the groups that existed when it was sent.
    await live.subscribe([g.groupId]);
    renderGroups();
    await openGroup(g.groupId);
  } catch (err) {
    showError(err);
  }
});

async function join(groupId) {
  await api.joinGroup(groupId);
  mine.add(groupId);
  await live.subscribe([groupId]);
  groups.set(groupId, await api.getGroup(groupId));
  renderGroups();
  await openGroup(groupId);
}

$('#join-button').addEventListener('click', () => current && join(current.groupId).catch(showError));

$('#leave-button').addEventListener('click', async () => {
  if (!current) return;
  try {
    await api.leaveGroup(current.groupId);
    await live.unsubscribe([current.groupId]).catch(() => {});
    mine.delete(current.groupId);
    if (current.visibility !== 'public') groups.delete(current.groupId);
    current = null;
    $('#group').hidden = true;
    $('#no-group').hidden = false;
    renderGroups();
  } catch (err) {
    showError(err);
  }
});

// ---- the group page ----

async function openGroup(groupId) {
  const g = await api.getGroup(groupId);
  groups.set(groupId, g);
  current = g;
  $('#group').hidden = false;
  $('#no-group').hidden = true;
  $('#group').dataset.groupId = groupId;
  $('#group-title').textContent = g.name;
  $('#group-description').textContent = g.description;
  $('#member-count').textContent = String(g.memberCount);
  const member = mine.has(groupId);
  $('#post-form').hidden = !member;
  $('#invite-button').hidden = !member;
  $('#leave-button').hidden = !member || g.ownerId === me.sub;
  $('#join-button').hidden = member;
  renderGroups();
  const [posts, members] = await Promise.all([api.listPosts(groupId, { limit: 50 }), api.listMembers(groupId, { limit: 100 })]);
  if (current?.groupId !== groupId) return;
  $('#posts').replaceChildren(...posts.items.map(postItem));
  renderMembers(members.items);
}

function postItem(p) {
  const li = document.createElement('li');
  li.dataset.postId = p.postId;
  const author = document.createElement('span');
  author.className = 'author';
  author.textContent = p.authorName;
  const time = document.createElement('time');
  time.dateTime = p.createdAt;
  time.textContent = new Date(p.createdAt).toLocaleTimeString();
  const content = document.createElement('div');
  content.className = 'content';
  content.textContent = p.content;
  li.append(author, time, content);
  return li;
}

function renderMembers(items) {
  $('#members').replaceChildren(
    ...items.map((m) => {
      const li = document.createElement('li');
      li.dataset.userId = m.userId;
      li.textContent = `${m.displayName} (${m.userId})${m.role === 'owner' ? ' · owner' : ''}`;
      return li;
    }),
  );
}

/** Adds posts not shown yet, newest first. */
function showPosts(items) {
  const list = $('#posts');
  for (const p of [...items].reverse()) {
    if (list.querySelector(`li[data-post-id="${CSS.escape(p.postId)}"]`)) continue;
    list.prepend(postItem(p));
  }
}

$('#post-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!current) return;
  const ta = e.target.elements.content;
  try {
    // The author's own connections get no event for their post: show the answer.
    const p = await api.createPost(current.groupId, ta.value);
    ta.value = '';
    showPosts([p]);
  } catch (err) {
    showError(err);
  }
});

// ---- live events ----

async function onPost(e) {
  const d = e.data;
  const g = groups.get(e.groupId);
  if (d.authorId !== me.sub) {
    toast(`${d.authorName} in ${g?.name ?? 'a group'}: ${d.contentPreview}`, 'post');
    addToInbox(e);
  }
  if (current?.groupId === e.groupId) {
    // The event carries a preview; fetch the post itself.
    const page = await api.listPosts(e.groupId, { limit: 50 });
    if (current?.groupId === e.groupId) showPosts(page.items);
  }
}

async function onMembers(e) {
  const g = groups.get(e.groupId);
  if (g) g.memberCount = e.data.memberCount;
  if (e.type === 'group.member_left' && e.data.userId === me.sub) mine.delete(e.groupId);
  renderGroups();
  if (current?.groupId === e.groupId) {
    current.memberCount = e.data.memberCount;
    $('#member-count').textContent = String(e.data.memberCount);
    const members = await api.listMembers(e.groupId, { limit: 100 }).catch(() => null);
    if (members && current?.groupId === e.groupId) renderMembers(members.items);
  }
}

function onGroupCreated(e) {
  const g = e.data;
  groups.set(g.groupId, g);
  if (g.ownerId === me.sub) mine.add(g.groupId);
  renderGroups();
}

function onInvitation(e) {
  const d = e.data;
  toast(`${d.inviterName} invited you to ${d.groupName}`, 'invitation');
  addToInbox(e);
  loadInvitations().catch(showError);
}

function onAnswer(e) {
  const d = e.data;
  const verb = e.type === 'invitation.accepted' ? 'accepted' : 'declined';
  toast(`${d.inviteeId} ${verb} your invitation to ${d.groupName}`, 'answer');
  const li = document.createElement('li');
  li.dataset.invitationId = d.invitationId;
  li.dataset.answer = verb;
  li.textContent = `${d.inviteeId} ${verb} · ${d.groupName}`;
  $('#answers').prepend(li);
  addToInbox(e);
}

// ---- invitations ----

async function loadInvitations() {
  const { items } = await api.listInvitations({ status: 'pending' });
  $('#invitations').replaceChildren(
    ...items.map((inv) => {
      const li = document.createElement('li');
      li.dataset.groupId = inv.groupId;
      const text = document.createElement('span');
      text.textContent = `${inv.inviterName} invited you to ${inv.groupName} `;
      const accept = document.createElement('button');
      accept.textContent = 'Accept';
      accept.className = 'accept';
      accept.addEventListener('click', () => answer(inv, true).catch(showError));
      const decline = document.createElement('button');
      decline.textContent = 'Decline';
      decline.className = 'decline';
      decline.addEventListener('click', () => answer(inv, false).catch(showError));
      li.append(text, accept, decline);
      return li;
    }),
  );
}

async function answer(inv, accept) {
  if (accept) await api.acceptInvitation(inv.groupId);
  else await api.declineInvitation(inv.groupId);
  await loadInvitations();
  if (accept) {
    mine.add(inv.groupId);
    await live.subscribe([inv.groupId]);
    await openGroup(inv.groupId);
  }
}

$('#invite-button').addEventListener('click', () => {
  if (!current) return;
  $('#invite-group-name').textContent = current.name;
  $('#invite-result').textContent = '';
  $('#invite-form').reset();
  $('#invite-dialog').showModal();
});

$('#invite-send').addEventListener('click', async (e) => {
  e.preventDefault();
  const form = $('#invite-form');
  if (!form.reportValidity() || !current) return;
  const userIds = form.elements.userIds.value.split(',').map((s) => s.trim()).filter(Boolean);
  try {
    const r = await api.invite(current.groupId, userIds);
    const skipped = r.skipped.map((s) => `${s.userId}: ${s.reason}`).join(', ');
    $('#invite-result').textContent = `Invited ${r.invitations.map((i) => i.inviteeId).join(', ') || 'nobody'}${skipped ? `; skipped ${skipped}` : ''}`;
  } catch (err) {
    $('#invite-result').textContent = describe(err);
  }
});

// ---- inbox ----

async function loadInbox() {
  inbox = await api.listNotifications({ limit: 50 });
  renderInbox();
}

/** Live events that also reach the inbox share its id, so a later reload agrees. */
function addToInbox(e) {
  if (inbox.items.some((n) => n.id === e.id)) return;
  // Inbox items are the event's envelope plus read.
  inbox.items.unshift({ ...e, read: false });
  inbox.unreadCount++;
  renderInbox();
}

function describeNotification(n) {
  const d = n.data ?? {};
  switch (n.type) {
    case 'group.post_created':
      return `${d.authorName}: ${d.contentPreview}`;
    case 'invitation.received':
      return `${d.inviterName} invited you to ${d.groupName}`;
    case 'invitation.accepted':
    case 'invitation.declined':
      return `${d.inviteeId} ${n.type.split('.')[1]} your invitation to ${d.groupName}`;
    default:
      return n.type;
  }
}

function renderInbox() {
  $('#inbox-count').textContent = String(inbox.unreadCount);
  $('#inbox-unread').textContent = String(inbox.unreadCount);
  $('#inbox').replaceChildren(
    ...inbox.items.map((n) => {
      const li = document.createElement('li');
      li.dataset.id = n.id;
      li.className = n.read ? 'read' : 'unread';
      const text = document.createElement('span');
      text.textContent = describeNotification(n) + ' ';
      li.append(text);
      if (!n.read) {
        const b = document.createElement('button');
        b.textContent = 'Mark read';
        b.className = 'mark-read';
        b.addEventListener('click', () => markRead({ ids: [n.id] }).catch(showError));
        li.append(b);
      }
      return li;
    }),
  );
}

async function markRead(which) {
  await api.markNotificationsRead(which);
  await loadInbox();
}

$('#inbox-button').addEventListener('click', () => {
  $('#inbox-dialog').showModal();
  loadInbox().catch(showError);
});
$('#inbox-mark-all').addEventListener('click', () => markRead({ all: true }).catch(showError));

// ---- toasts and errors ----

const ACTIVITY_MAX = 50; // enough to scroll back through a reconnect's replay

function logActivity(e) {
  const d = e.data ?? {};
  const who = d.displayName ?? d.authorName ?? d.inviterName ?? d.inviteeId ?? d.ownerId ?? '';
  const what = { 'group.post_created': `posted “${d.contentPreview}”`, 'group.member_joined': 'joined', 'group.member_left': 'left',
    'group.created': `created ${d.name}` }[e.type] ?? e.type;
  const li = document.createElement('li');
  li.dataset.eventId = e.id;
  li.dataset.type = e.type;
  li.textContent = `${who} ${what} · ${groups.get(e.groupId)?.name ?? d.groupName ?? d.name ?? e.groupId}`;
  const list = $('#activity');
  list.prepend(li);
  while (list.children.length > ACTIVITY_MAX) list.lastElementChild.remove();
}

function toast(text, kind) {
  const el = document.createElement('div');
  el.className = 'toast';
  el.dataset.kind = kind;
  el.textContent = text;
  $('#toasts').append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

function describe(err) {
  if (err instanceof ApiError) {
    return err.retryAfter !== undefined ? `${err.detail} (retry in ${err.retryAfter} s)` : `${err.detail} (${err.code})`;
  }
  return String(err?.message ?? err);
}

function showError(err) {
  console.error(err);
  const el = $('#error');
  el.textContent = describe(err);
  setTimeout(() => {
    if (el.textContent === describe(err)) el.textContent = '';
  }, TOAST_MS);
}

// ?user=alice&name=Alice signs in straight away.
const params = new URLSearchParams(location.search);
if (params.get('user')) signIn(params.get('user'), params.get('name') || params.get('user'));
