// Package client is a small Go client for the Groupcast HTTP and WebSocket
// APIs. The load tool and the end-to-end tests use it; it is also a worked
// example for anyone calling the service from Go.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTP talks to the REST API as one user.
type HTTP struct {
	BaseURL string // e.g. http://127.0.0.1:3000 or https://abc.execute-api.eu-west-1.amazonaws.com
	Token   string // a JWT for the user
	Client  *http.Client
}

// APIError is a non-2xx answer of the REST API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("http %d %s: %s", e.Status, e.Code, e.Message)
}

// Group is the API's group representation.
type Group struct {
	GroupID     string    `json:"groupId"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Visibility  string    `json:"visibility"`
	OwnerID     string    `json:"ownerId"`
	MemberCount int       `json:"memberCount"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Post is the API's post representation.
type Post struct {
	PostID     string    `json:"postId"`
	GroupID    string    `json:"groupId"`
	AuthorID   string    `json:"authorId"`
	AuthorName string    `json:"authorName"`
	Content    string    `json:"content"`
	CreatedAt  time.Time `json:"createdAt"`
}

// InviteResult is the answer to POST /groups/{id}/invitations.
type InviteResult struct {
	Invitations []json.RawMessage `json:"invitations"`
	Skipped     []struct {
		UserID string `json:"userId"`
		Reason string `json:"reason"`
	} `json:"skipped"`
}

func (c *HTTP) CreateGroup(ctx context.Context, name, description, visibility string) (Group, error) {
	var g Group
	err := c.Do(ctx, http.MethodPost, "/groups", map[string]string{
		"name": name, "description": description, "visibility": visibility,
	}, &g)
	return g, err
}

func (c *HTTP) JoinGroup(ctx context.Context, groupID string) error {
	return c.Do(ctx, http.MethodPost, "/groups/"+url.PathEscape(groupID)+"/members", nil, nil)
}

func (c *HTTP) CreatePost(ctx context.Context, groupID, content string) (Post, error) {
	var p Post
	err := c.Do(ctx, http.MethodPost, "/groups/"+url.PathEscape(groupID)+"/posts",
		map[string]string{"content": content}, &p)
	return p, err
}

// ListPosts lists a group's posts, newest first; after limits them to posts
// newer than that id.
func (c *HTTP) ListPosts(ctx context.Context, groupID, after string) ([]Post, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	var page struct {
		Items []Post `json:"items"`
	}
	err := c.Do(ctx, http.MethodGet, "/groups/"+url.PathEscape(groupID)+"/posts?"+q.Encode(), nil, &page)
	return page.Items, err
}

func (c *HTTP) Invite(ctx context.Context, groupID string, userIDs ...string) (InviteResult, error) {
	var r InviteResult
	err := c.Do(ctx, http.MethodPost, "/groups/"+url.PathEscape(groupID)+"/invitations",
		map[string][]string{"userIds": userIDs}, &r)
	return r, err
}

// AnswerInvitation accepts or declines the caller's invitation to groupID.
func (c *HTTP) AnswerInvitation(ctx context.Context, groupID string, accept bool) error {
	verb := "decline"
	if accept {
		verb = "accept"
	}
	return c.Do(ctx, http.MethodPost, "/groups/"+url.PathEscape(groupID)+"/invitations/"+verb, nil, nil)
}

// Do sends one request with body encoded as JSON (nil for none) and decodes
// a 2xx answer into out (nil to discard). Non-2xx answers become *APIError.
func (c *HTTP) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{Status: resp.StatusCode}
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			Message string `json:"message"` // API Gateway's own errors
		}
		if json.Unmarshal(data, &e) == nil {
			apiErr.Code, apiErr.Message = e.Error.Code, e.Error.Message
			if apiErr.Message == "" {
				apiErr.Message = e.Message
			}
		}
		return fmt.Errorf("%s %s: %w", method, path, apiErr)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// IsStatus reports whether err is an *APIError with the given status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}
