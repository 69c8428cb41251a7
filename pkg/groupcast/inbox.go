package groupcast

import (
	"context"
	"fmt"
)

// InboxStore reads and marks a user's inbox (the fan-out writes it).
type InboxStore interface {
	// ListNotifications lists userID's inbox, newest first.
	ListNotifications(ctx context.Context, userID string, p PageRequest) (Page[Notification], error)
	CountUnread(ctx context.Context, userID string) (int, error)
	// MarkRead marks the listed notifications read; ids == nil marks all.
	// Unknown or already read ids are ignored.
	MarkRead(ctx context.Context, userID string, ids []string) error
}

// ListNotifications returns a page of the caller's inbox and the number of
// unread notifications.
func (s *Service) ListNotifications(ctx context.Context, c Caller, p PageRequest) (page Page[Notification], unread int, err error) {
	if err := validateCaller(c); err != nil {
		return Page[Notification]{}, 0, err
	}
	if p, err = NormalizePage(p); err != nil {
		return Page[Notification]{}, 0, err
	}
	if page, err = s.inbox.ListNotifications(ctx, c.UserID, p); err != nil {
		return Page[Notification]{}, 0, err
	}
	if unread, err = s.inbox.CountUnread(ctx, c.UserID); err != nil {
		return Page[Notification]{}, 0, fmt.Errorf("count unread: %w", err)
	}
	return page, unread, nil
}

// MarkNotificationsRead marks the given notifications, or all, read.
func (s *Service) MarkNotificationsRead(ctx context.Context, c Caller, ids []string, all bool) error {
	if err := validateCaller(c); err != nil {
		return err
	}
	if all {
		if len(ids) > 0 {
			return Errorf(CodeInvalid, "give either ids or all, not both")
		}
		return s.inbox.MarkRead(ctx, c.UserID, nil)
	}
	ids, err := ValidateNotificationIDs(ids)
	if err != nil {
		return err
	}
	return s.inbox.MarkRead(ctx, c.UserID, ids)
}
