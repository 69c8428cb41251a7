package cfn

import (
	"maps"
	"slices"
)

// This file is the one walker of template values. Resolve, Validate,
// References and the local stack's SAM policy templates all visit intrinsic
// function calls through Rewrite, so what counts as a call, the order keys
// are visited in and the dotted paths in errors are decided once.

// call returns the function name and argument when v is an intrinsic
// function call: a mapping with the one key Ref or Fn::*. A one-key
// {"Condition": name} is not a call in a value; it names a condition only
// in Conditions, and elsewhere is an ordinary property.
func call(v map[string]any) (fn string, arg any, ok bool) {
	fn, arg, ok = singleKey(v)
	if !ok || fn == "Condition" || !isIntrinsic(v) {
		return "", nil, false
	}
	return fn, arg, true
}

// Rewrite returns a copy of the template value v in which each intrinsic
// function call is replaced by what onCall returns for it. It walks
// mappings (in sorted key order, so calls and errors come in a stable
// order) and lists; path is v's dotted path and extends as it descends.
// onCall gets the call's function, argument and path, and walks the
// argument itself, with Rewrite, where it needs to. A mapping entry or list
// element that becomes AWS::NoValue is dropped. The first error stops the
// walk.
func Rewrite(v any, path string, onCall func(fn string, arg any, path string) (any, error)) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if fn, arg, ok := call(x); ok {
			return onCall(fn, arg, path)
		}
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			r, err := Rewrite(x[k], joinPath(path, k), onCall)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			r, err := Rewrite(e, joinPath(path, i), onCall)
			if err != nil {
				return nil, err
			}
			if _, drop := r.(noValue); !drop {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

// visitCalls calls visit for each intrinsic function call in v, in
// Rewrite's order, for walks that only look (validation, references).
func visitCalls(v any, path string, visit func(fn string, arg any, path string)) {
	_, _ = Rewrite(v, path, func(fn string, arg any, path string) (any, error) {
		visit(fn, arg, path)
		return nil, nil
	})
}
