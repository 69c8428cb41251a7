// Package iam is the local stack's stand-in for AWS Identity and Access
// Management: each function gets its own credentials, requests to the
// local endpoints are authenticated by recomputing their Signature
// Version 4 signature, and each call is evaluated against the statements
// of the execution role the template gives the function (SAM policy
// templates, inline statements and AWS managed policies).
package iam

import (
	"errors"
	"fmt"
	"strings"
)

// Statement is one statement of an identity-based policy.
type Statement struct {
	Sid         string
	Effect      string // "Allow" or "Deny"
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
}

// Decision is the outcome of evaluating a request.
type Decision int

const (
	// ImplicitDeny: no statement allows the request (IAM's default).
	ImplicitDeny Decision = iota
	// Allow: a statement allows it and none denies it.
	Allow
	// ExplicitDeny: a Deny statement matches; it overrides every Allow.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Evaluate applies IAM's evaluation logic for identity-based policies in
// one account: an explicit Deny wins, otherwise an Allow allows, otherwise
// the request is implicitly denied.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
func Evaluate(stmts []Statement, action, resource string) Decision {
	allowed := false
	for _, st := range stmts {
		if !st.matches(action, resource) {
			continue
		}
		if st.Effect == "Deny" {
			return ExplicitDeny
		}
		allowed = true
	}
	if allowed {
		return Allow
	}
	return ImplicitDeny
}

func (st Statement) matches(action, resource string) bool {
	// Action names are case-insensitive; resource ARNs are case-sensitive.
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
	if st.Action != nil && !anyMatch(st.Action, action, true) {
		return false
	}
	if st.NotAction != nil && anyMatch(st.NotAction, action, true) {
		return false
	}
	if st.Resource != nil && !anyMatch(st.Resource, resource, false) {
		return false
	}
	if st.NotResource != nil && anyMatch(st.NotResource, resource, false) {
		return false
	}
	return true
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if Match(p, s, fold) {
			return true
		}
	}
	return false
}

// Match reports whether s matches an IAM pattern, where * matches any run
// of characters (including none) and ? exactly one. IAM applies the
// wildcards to the whole string, across ARN segments: "table/*" matches
// "table/T/index/I".
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
func Match(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// Iterative glob matching with one backtrack point: linear in
	// practice and never recursive.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ParseDocument reads a policy document (a resolved template value: a map
// with Statement, one statement or a list) into statements. Conditions are
// refused rather than ignored: ignoring one would allow what AWS denies.
func ParseDocument(doc any) ([]Statement, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy document must be an object, got %T", doc)
	}
	raw, ok := m["Statement"]
	if !ok {
		return nil, errors.New("policy document has no Statement")
	}
	var list []any
	switch x := raw.(type) {
	case []any:
		list = x
	case map[string]any:
		list = []any{x}
	default:
		return nil, fmt.Errorf("Statement must be an object or a list, got %T", raw)
	}
	out := make([]Statement, 0, len(list))
	for i, e := range list {
		sm, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("statement %d must be an object, got %T", i, e)
		}
		st, err := parseStatement(sm)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func parseStatement(m map[string]any) (Statement, error) {
	var st Statement
	st.Sid, _ = m["Sid"].(string)
	st.Effect, _ = m["Effect"].(string)
	if st.Effect != "Allow" && st.Effect != "Deny" {
		return st, fmt.Errorf("statement Effect must be Allow or Deny, got %v", m["Effect"])
	}
	if _, ok := m["Condition"]; ok {
		return st, errors.New("policy Condition is not supported by the local stack's IAM evaluation")
	}
	if _, ok := m["Principal"]; ok {
		return st, errors.New("Principal does not belong in an identity-based policy")
	}
	var err error
	fields := []struct {
		name string
		dst  *[]string
	}{{"Action", &st.Action}, {"NotAction", &st.NotAction}, {"Resource", &st.Resource}, {"NotResource", &st.NotResource}}
	for _, f := range fields {
		v, ok := m[f.name]
		if !ok {
			continue
		}
		if *f.dst, err = strings1(v); err != nil {
			return st, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if (st.Action == nil) == (st.NotAction == nil) {
		return st, errors.New("exactly one of Action and NotAction is required")
	}
	if (st.Resource == nil) == (st.NotResource == nil) {
		return st, errors.New("exactly one of Resource and NotResource is required")
	}
	return st, nil
}

// strings1 reads a string or a non-empty list of strings.
func strings1(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("must be strings, got %T", e)
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, errors.New("must not be empty")
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a string or a list of strings, got %T", v)
}
