package groupcast

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits. Lengths count characters (runes), not bytes.
const (
	MaxGroupNameLength   = 100
	MaxDescriptionLength = 1000
	MaxPostLength        = 5000
	// MaxInviteesPerCall keeps one invitation request within a bounded number
	// of DynamoDB calls (one BatchGetItem of at most 100 keys per check).
	MaxInviteesPerCall = 50
	// MaxIDLength bounds user, group, connection and post ids. Identity
	// providers' subject claims are far shorter (Cognito: 36); the bound
	// keeps keys well below DynamoDB's 1 KiB sort-key limit.
	MaxIDLength = 128
	// DefaultPageLimit and MaxPageLimit bound one page of a listing so a
	// response stays small and one Query reads at most 100 items.
	DefaultPageLimit = 20
	MaxPageLimit     = 100
	// MaxCursorLength rejects oversized cursors before decoding them; a real
	// cursor (a base64 key of a few short strings) is a few hundred bytes.
	MaxCursorLength = 2048
	// MaxNotificationIDsPerCall bounds one mark-read request (one page of
	// notifications at most).
	MaxNotificationIDsPerCall = MaxPageLimit
	// MaxSubscribeTargets bounds the group ids of one subscribe or
	// unsubscribe message; it matches the default subscription cap.
	MaxSubscribeTargets = 100
)

// ValidateCreateGroup trims and checks a new group's fields.
func ValidateCreateGroup(in CreateGroupInput) (CreateGroupInput, error) {
	name, err := checkText("name", in.Name, 1, MaxGroupNameLength)
	if err != nil {
		return CreateGroupInput{}, err
	}
	desc, err := checkText("description", in.Description, 0, MaxDescriptionLength)
	if err != nil {
		return CreateGroupInput{}, err
	}
	switch in.Visibility {
	case Public, Private:
	default:
		return CreateGroupInput{}, Errorf(CodeInvalid, "visibility must be %q or %q", Public, Private)
	}
	return CreateGroupInput{Name: name, Description: desc, Visibility: in.Visibility}, nil
}

// ValidatePostContent trims content and checks it is 1–5000 characters of valid UTF-8.
func ValidatePostContent(content string) (string, error) {
	return checkText("content", content, 1, MaxPostLength)
}

// checkText trims s and checks it is valid UTF-8 of min..max characters.
func checkText(field, s string, min, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", Errorf(CodeInvalid, "%s must be valid UTF-8", field)
	}
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case n < min && min == 1:
		return "", Errorf(CodeInvalid, "%s must not be empty", field)
	case n < min:
		return "", Errorf(CodeInvalid, "%s must have at least %d characters", field, min)
	case n > max:
		return "", Errorf(CodeInvalid, "%s must have at most %d characters", field, max)
	}
	return s, nil
}

// ValidateID checks an identifier used inside table keys: non-empty, at most
// MaxIDLength bytes, no '#' (the key separator) and no control characters.
func ValidateID(field, id string) error {
	switch {
	case id == "":
		return Errorf(CodeInvalid, "%s must not be empty", field)
	case len(id) > MaxIDLength:
		return Errorf(CodeInvalid, "%s must have at most %d bytes", field, MaxIDLength)
	case !utf8.ValidString(id):
		return Errorf(CodeInvalid, "%s must be valid UTF-8", field)
	case strings.ContainsRune(id, '#'):
		return Errorf(CodeInvalid, "%s must not contain '#'", field)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return Errorf(CodeInvalid, "%s must not contain control characters", field)
	}
	return nil
}

// ValidateInvitees checks the user ids of one invitation call and returns
// them without duplicates, in their first-seen order.
func ValidateInvitees(userIDs []string) ([]string, error) {
	if len(userIDs) == 0 {
		return nil, Errorf(CodeInvalid, "userIds must not be empty")
	}
	if len(userIDs) > MaxInviteesPerCall {
		return nil, Errorf(CodeInvalid, "at most %d userIds per call", MaxInviteesPerCall)
	}
	return uniqueIDs("userIds", userIDs)
}

// ValidateNotificationIDs checks the ids of one mark-read call and removes duplicates.
func ValidateNotificationIDs(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, Errorf(CodeInvalid, "ids must not be empty (or use all)")
	}
	if len(ids) > MaxNotificationIDsPerCall {
		return nil, Errorf(CodeInvalid, "at most %d ids per call", MaxNotificationIDsPerCall)
	}
	return uniqueIDs("ids", ids)
}

func uniqueIDs(field string, ids []string) ([]string, error) {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := ValidateID(field+" entry", id); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// NormalizePage applies the default limit and checks the bounds.
func NormalizePage(p PageRequest) (PageRequest, error) {
	switch {
	case p.Limit == 0:
		p.Limit = DefaultPageLimit
	case p.Limit < 0 || p.Limit > MaxPageLimit:
		return PageRequest{}, Errorf(CodeInvalid, "limit must be between 1 and %d", MaxPageLimit)
	}
	if len(p.Cursor) > MaxCursorLength {
		return PageRequest{}, Errorf(CodeInvalid, "cursor is malformed")
	}
	return p, nil
}

// ValidateInvitationStatus accepts "" (all) or one of the statuses.
func ValidateInvitationStatus(s InvitationStatus) error {
	switch s {
	case "", InvitationPending, InvitationAccepted, InvitationDeclined:
		return nil
	}
	return Errorf(CodeInvalid, "status must be one of PENDING, ACCEPTED, DECLINED")
}
