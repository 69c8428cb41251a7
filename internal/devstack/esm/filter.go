package esm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// filter is one compiled FilterCriteria pattern, in Lambda's event-filtering
// syntax. Supported: exact values (strings, numbers, booleans, null),
// {"prefix": s}, {"suffix": s}, {"equals-ignore-case": s},
// {"anything-but": value | [values] | {"prefix": s}}, {"numeric": [op, n, ...]}
// with =, <, <=, >, >=, and {"exists": bool}. Nested objects descend into the
// record; leaves are arrays of alternatives (any may match); a field whose
// value is an array matches when any element does. Fields ANDed, patterns
// ORed, as Lambda does. Not supported: $or, cidr, wildcard.
type filter struct {
	fields map[string]*filter // an object pattern
	rules  []rule             // a leaf: alternatives
}

type rule struct {
	kind    string // "exact", "prefix", "suffix", "ignorecase", "anything-but", "anything-but-prefix", "numeric", "exists"
	value   any    // exact value, or string for prefix/suffix/ignorecase
	values  []any  // anything-but
	numeric []numCond
	exists  bool
}

type numCond struct {
	op string
	n  float64
}

func compileFilter(pattern string) (*filter, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(pattern))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("filter pattern %q: %w", pattern, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("filter pattern %q: must be a JSON object", pattern)
	}
	f, err := compileObject(obj)
	if err != nil {
		return nil, fmt.Errorf("filter pattern %q: %w", pattern, err)
	}
	return f, nil
}

func compileObject(obj map[string]any) (*filter, error) {
	f := &filter{fields: map[string]*filter{}}
	for k, v := range obj {
		switch t := v.(type) {
		case map[string]any:
			child, err := compileObject(t)
			if err != nil {
				return nil, err
			}
			f.fields[k] = child
		case []any:
			rules, err := compileRules(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			f.fields[k] = &filter{rules: rules}
		default:
			return nil, fmt.Errorf("%s: a leaf must be an array of values or operators", k)
		}
	}
	return f, nil
}

func compileRules(list []any) ([]rule, error) {
	rules := make([]rule, 0, len(list))
	for _, v := range list {
		op, ok := v.(map[string]any)
		if !ok {
			rules = append(rules, rule{kind: "exact", value: v})
			continue
		}
		if len(op) != 1 {
			return nil, fmt.Errorf("an operator object must have exactly one key, got %v", op)
		}
		for name, arg := range op {
			r, err := compileOperator(name, arg)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func compileOperator(name string, arg any) (rule, error) {
	str := func() (string, error) {
		s, ok := arg.(string)
		if !ok {
			return "", fmt.Errorf("%s needs a string, got %v", name, arg)
		}
		return s, nil
	}
	switch name {
	case "prefix", "suffix", "equals-ignore-case":
		s, err := str()
		kind := name
		if name == "equals-ignore-case" {
			kind = "ignorecase"
		}
		return rule{kind: kind, value: s}, err
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return rule{}, fmt.Errorf("exists needs true or false, got %v", arg)
		}
		return rule{kind: "exists", exists: b}, nil
	case "anything-but":
		switch t := arg.(type) {
		case []any:
			return rule{kind: "anything-but", values: t}, nil
		case map[string]any:
			p, ok := t["prefix"].(string)
			if !ok || len(t) != 1 {
				return rule{}, fmt.Errorf("anything-but object supports only prefix, got %v", t)
			}
			return rule{kind: "anything-but-prefix", value: p}, nil
		default:
			return rule{kind: "anything-but", values: []any{t}}, nil
		}
	case "numeric":
		list, ok := arg.([]any)
		if !ok || len(list) == 0 || len(list)%2 != 0 {
			return rule{}, fmt.Errorf("numeric needs [op, number, ...], got %v", arg)
		}
		r := rule{kind: "numeric"}
		for i := 0; i < len(list); i += 2 {
			op, _ := list[i].(string)
			n, ok := list[i+1].(float64)
			switch op {
			case "=", "<", "<=", ">", ">=":
			default:
				return rule{}, fmt.Errorf("numeric operator %v not supported", list[i])
			}
			if !ok {
				return rule{}, fmt.Errorf("numeric %s needs a number, got %v", op, list[i+1])
			}
			r.numeric = append(r.numeric, numCond{op, n})
		}
		return r, nil
	}
	return rule{}, fmt.Errorf("filter operator %q not supported", name)
}

// match reports whether a decoded JSON value (present says whether the
// field exists at all) satisfies the pattern.
func (f *filter) match(v any, present bool) bool {
	if f.fields != nil {
		obj, _ := v.(map[string]any) // a missing or non-object value has no fields
		for k, child := range f.fields {
			cv, ok := obj[k]
			if !child.match(cv, ok) {
				return false
			}
		}
		return true
	}
	for _, r := range f.rules {
		if r.kind == "exists" {
			if r.exists == present {
				return true
			}
			continue
		}
		if !present {
			continue
		}
		if list, ok := v.([]any); ok {
			for _, e := range list {
				if r.matchValue(e) {
					return true
				}
			}
			continue
		}
		if r.matchValue(v) {
			return true
		}
	}
	return false
}

func (r rule) matchValue(v any) bool {
	switch r.kind {
	case "exact":
		return equal(r.value, v)
	case "prefix":
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, r.value.(string))
	case "suffix":
		s, ok := v.(string)
		return ok && strings.HasSuffix(s, r.value.(string))
	case "ignorecase":
		s, ok := v.(string)
		return ok && strings.EqualFold(s, r.value.(string))
	case "anything-but":
		for _, x := range r.values {
			if equal(x, v) {
				return false
			}
		}
		return true
	case "anything-but-prefix":
		s, ok := v.(string)
		return ok && !strings.HasPrefix(s, r.value.(string))
	case "numeric":
		n, ok := v.(float64)
		if !ok {
			return false
		}
		for _, c := range r.numeric {
			if !c.holds(n) {
				return false
			}
		}
		return true
	}
	return false
}

func (c numCond) holds(n float64) bool {
	switch c.op {
	case "=":
		return n == c.n
	case "<":
		return n < c.n
	case "<=":
		return n <= c.n
	case ">":
		return n > c.n
	default: // ">=", the only other operator compileOperator accepts
		return n >= c.n
	}
}

// equal compares decoded JSON scalars: numbers by value, the rest exactly.
func equal(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false
}

// matchAny reports whether a record (its JSON) matches any of the filters;
// no filters match everything.
func matchAny(filters []*filter, recordJSON []byte) (bool, error) {
	if len(filters) == 0 {
		return true, nil
	}
	var v any
	if err := json.NewDecoder(bytes.NewReader(recordJSON)).Decode(&v); err != nil {
		return false, err
	}
	for _, f := range filters {
		if f.match(v, true) {
			return true, nil
		}
	}
	return false, nil
}
