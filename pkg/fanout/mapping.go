package fanout

import (
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Stream images are the table's items, so they decode into the store's own
// item structs: one definition of the attribute names.

// plan is what one record turns into: the event, who gets it live, and
// whose inbox keeps it.
type plan struct {
	event    groupcast.Event
	audience audience
	inbox    inbox
}

// audience is either a user's connections (userID) or the subscribers of a
// group or of the "public" feed (groupID), minus excludeUserID's.
type audience struct {
	userID        string
	groupID       string
	excludeUserID string
}

// inbox names one user, or every member of a group except one user.
type inbox struct {
	userID         string
	groupMembersOf string
	exceptUserID   string
}

// planFor maps a stream record to its plan; ok is false for records that
// carry no event (REMOVEs, other item types, unrelated modifications).
func planFor(rec events.DynamoDBEventRecord) (p plan, ok bool, err error) {
	if rec.EventName != "INSERT" && rec.EventName != "MODIFY" {
		return plan{}, false, nil
	}
	newImage, err := toSDKImage(rec.Change.NewImage)
	if err != nil {
		return plan{}, false, fmt.Errorf("new image: %w", err)
	}
	oldImage, err := toSDKImage(rec.Change.OldImage)
	if err != nil {
		return plan{}, false, fmt.Errorf("old image: %w", err)
	}
	var head struct {
		Type string `dynamodbav:"type"`
	}
	if err := attributevalue.UnmarshalMap(newImage, &head); err != nil {
		return plan{}, false, fmt.Errorf("decode item type: %w", err)
	}
	insert := rec.EventName == "INSERT"
	switch {
	case head.Type == dynamostore.TypePost && insert:
		var post dynamostore.PostItem
		if err := attributevalue.UnmarshalMap(newImage, &post); err != nil {
			return plan{}, false, fmt.Errorf("decode post: %w", err)
		}
		return postCreated(post), true, nil
	case head.Type == dynamostore.TypeGroup:
		var now, before dynamostore.GroupItem
		if err := decodeImages(newImage, oldImage, &now, &before); err != nil {
			return plan{}, false, fmt.Errorf("decode group: %w", err)
		}
		if insert {
			return groupCreated(now), true, nil
		}
		return membershipChanged(now, before)
	case head.Type == dynamostore.TypeInvitation:
		var now, before dynamostore.InvitationItem
		if err := decodeImages(newImage, oldImage, &now, &before); err != nil {
			return plan{}, false, fmt.Errorf("decode invitation: %w", err)
		}
		return invitationChanged(now, before, insert)
	}
	return plan{}, false, nil
}

func decodeImages(newImage, oldImage map[string]types.AttributeValue, now, before any) error {
	if err := attributevalue.UnmarshalMap(newImage, now); err != nil {
		return err
	}
	if oldImage == nil {
		return nil
	}
	return attributevalue.UnmarshalMap(oldImage, before)
}

func postCreated(post dynamostore.PostItem) plan {
	e := groupcast.Event{
		ID:      groupcast.EventID(groupcast.EventPostCreated, post.GroupID, post.PostID),
		Type:    groupcast.EventPostCreated,
		GroupID: post.GroupID,
		At:      post.CreatedAt,
		Data: map[string]any{
			"postId":         post.PostID,
			"authorId":       post.AuthorID,
			"authorName":     post.AuthorName,
			"contentPreview": groupcast.Preview(post.Content),
			"createdAt":      formatTime(post.CreatedAt),
		},
	}
	return plan{
		event:    e,
		audience: audience{groupID: post.GroupID, excludeUserID: post.AuthorID},
		inbox:    inbox{groupMembersOf: post.GroupID, exceptUserID: post.AuthorID},
	}
}

func groupCreated(g dynamostore.GroupItem) plan {
	e := groupcast.Event{
		ID:      groupcast.EventID(groupcast.EventGroupCreated, g.GroupID),
		Type:    groupcast.EventGroupCreated,
		GroupID: g.GroupID,
		At:      g.CreatedAt,
		Data: map[string]any{
			"groupId":     g.GroupID,
			"name":        g.Name,
			"description": g.Description,
			"visibility":  g.Visibility,
			"ownerId":     g.OwnerID,
			"createdAt":   formatTime(g.CreatedAt),
			"memberCount": g.MemberCount,
		},
	}
	a := audience{groupID: groupcast.SubscribePublic}
	if groupcast.Visibility(g.Visibility) != groupcast.Public {
		a = audience{userID: g.OwnerID}
	}
	return plan{event: e, audience: a}
}

// membershipChanged emits member_joined / member_left when lastChange got a
// new changeId; other group modifications carry no event.
func membershipChanged(now, before dynamostore.GroupItem) (plan, bool, error) {
	c := now.LastChange
	if c == nil || c.ChangeID == "" || (before.LastChange != nil && before.LastChange.ChangeID == c.ChangeID) {
		return plan{}, false, nil
	}
	var t groupcast.EventType
	switch c.Kind {
	case "joined":
		t = groupcast.EventMemberJoined
	case "left":
		t = groupcast.EventMemberLeft
	default:
		return plan{}, false, fmt.Errorf("group %s: unknown lastChange kind %q", now.GroupID, c.Kind)
	}
	e := groupcast.Event{
		ID:      groupcast.EventID(t, now.GroupID, c.ChangeID),
		Type:    t,
		GroupID: now.GroupID,
		At:      c.At,
		Data:    map[string]any{"userId": c.UserID, "displayName": c.DisplayName, "memberCount": now.MemberCount},
	}
	return plan{event: e, audience: audience{groupID: now.GroupID}}, true, nil
}

// invitationChanged emits invitation.received for a new pending invitation
// (an INSERT, or a re-invitation overwriting an answered one) and
// invitation.accepted / declined when a pending one is answered.
func invitationChanged(now, before dynamostore.InvitationItem, insert bool) (plan, bool, error) {
	pending := string(groupcast.InvitationPending)
	switch {
	case now.Status == pending && (insert || before.Status != pending || before.InvitationID != now.InvitationID):
		e := groupcast.Event{
			ID:      groupcast.EventID(groupcast.EventInvitationReceived, now.InvitationID),
			Type:    groupcast.EventInvitationReceived,
			GroupID: now.GroupID,
			At:      now.CreatedAt,
			Data: map[string]any{
				"invitationId": now.InvitationID,
				"groupId":      now.GroupID,
				"groupName":    now.GroupName,
				"inviterId":    now.InviterID,
				"inviterName":  now.InviterName,
				"createdAt":    formatTime(now.CreatedAt),
			},
		}
		return plan{event: e, audience: audience{userID: now.InviteeID}, inbox: inbox{userID: now.InviteeID}}, true, nil
	case !insert && before.Status == pending && now.Status != pending:
		var t groupcast.EventType
		switch groupcast.InvitationStatus(now.Status) {
		case groupcast.InvitationAccepted:
			t = groupcast.EventInvitationAccepted
		case groupcast.InvitationDeclined:
			t = groupcast.EventInvitationDeclined
		default:
			return plan{}, false, fmt.Errorf("invitation %s: unknown status %q", now.InvitationID, now.Status)
		}
		var answeredAt time.Time
		if now.AnsweredAt != nil {
			answeredAt = *now.AnsweredAt
		}
		e := groupcast.Event{
			ID:      groupcast.EventID(t, now.InvitationID),
			Type:    t,
			GroupID: now.GroupID,
			At:      answeredAt,
			Data: map[string]any{
				"invitationId": now.InvitationID,
				"groupId":      now.GroupID,
				"groupName":    now.GroupName,
				"inviteeId":    now.InviteeID,
				"answeredAt":   formatTime(answeredAt),
			},
		}
		return plan{event: e, audience: audience{userID: now.InviterID}, inbox: inbox{userID: now.InviterID}}, true, nil
	}
	return plan{}, false, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
