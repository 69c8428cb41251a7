package groupcast

import (
	"context"
	"fmt"
	"time"
)

// PostStore stores posts and the post rate counters.
type PostStore interface {
	// PutPost stores p and its event ev atomically.
	PutPost(ctx context.Context, p Post, ev Event) error
	// ListPosts lists newest first; a non-empty afterPostID keeps only newer posts.
	ListPosts(ctx context.Context, groupID string, p PageRequest, afterPostID string) (Page[Post], error)
	// CountPost adds one post to userID's counter for the window starting at
	// windowStart and returns the new count. The counter expires at expiresAt.
	CountPost(ctx context.Context, userID string, windowStart, expiresAt time.Time) (int, error)
}

// rateWindow is the fixed window of the post rate limit.
const rateWindow = time.Minute

// CreatePost posts content to a group the caller is a member of.
func (s *Service) CreatePost(ctx context.Context, c Caller, groupID, content string) (Post, error) {
	content, err := ValidatePostContent(content)
	if err != nil {
		return Post{}, err
	}
	_, member, err := s.visibleGroup(ctx, c, groupID)
	if err != nil {
		return Post{}, err
	}
	if !member {
		return Post{}, Errorf(CodeForbidden, "only members can post in group %s", groupID)
	}
	now := s.now()
	if err := s.checkPostRate(ctx, c.UserID, now); err != nil {
		return Post{}, err
	}
	p := Post{ID: s.cfg.NewID(), GroupID: groupID, AuthorID: c.UserID, AuthorName: c.DisplayName, Content: content, CreatedAt: now}
	if err := s.posts.PutPost(ctx, p, s.stamp(PostCreatedEvent(p))); err != nil {
		return Post{}, fmt.Errorf("create post in %s: %w", groupID, err)
	}
	return p, nil
}

// checkPostRate counts one post in the caller's current fixed one-minute
// window. The counter lives in the store, so the limit holds across every
// function instance; a rejected attempt still counts, which keeps a client
// that ignores Retry-After throttled.
func (s *Service) checkPostRate(ctx context.Context, userID string, now time.Time) error {
	window := now.Truncate(rateWindow)
	end := window.Add(rateWindow)
	// Keep the counter one extra window so late requests near the boundary
	// still find it; TTL deletion is lazy anyway.
	n, err := s.posts.CountPost(ctx, userID, window, end.Add(rateWindow))
	if err != nil {
		return fmt.Errorf("count posts of %s: %w", userID, err)
	}
	if n <= s.cfg.PostsPerMinute {
		return nil
	}
	return &Error{
		Code:              CodeRateLimited,
		Message:           fmt.Sprintf("at most %d posts per minute", s.cfg.PostsPerMinute),
		RetryAfterSeconds: RetryAfterSeconds(now, end),
	}
}

// RetryAfterSeconds is the whole number of seconds from now until end,
// rounded up and at least 1 (a Retry-After of 0 invites a busy loop).
func RetryAfterSeconds(now, end time.Time) int {
	d := end.Sub(now)
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// ListPosts lists a visible group's posts newest first; afterPostID, when
// set, keeps only posts newer than that one.
func (s *Service) ListPosts(ctx context.Context, c Caller, groupID string, p PageRequest, afterPostID string) (Page[Post], error) {
	p, err := NormalizePage(p)
	if err != nil {
		return Page[Post]{}, err
	}
	if afterPostID != "" {
		// Post ids are ULIDs: anything else (an event id, a lower-cased
		// id) would silently match nothing, so it is refused.
		if err := ValidateULID("after", afterPostID); err != nil {
			return Page[Post]{}, err
		}
	}
	if _, _, err := s.visibleGroup(ctx, c, groupID); err != nil {
		return Page[Post]{}, err
	}
	return s.posts.ListPosts(ctx, groupID, p, afterPostID)
}
