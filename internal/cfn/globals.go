package cfn

import (
	"errors"
	"fmt"
	"strings"
)

// globalsSections maps each SAM Globals section to the resource type it
// applies to.
var globalsSections = map[string]string{
	"Function":     "AWS::Serverless::Function",
	"Api":          "AWS::Serverless::Api",
	"HttpApi":      "AWS::Serverless::HttpApi",
	"SimpleTable":  "AWS::Serverless::SimpleTable",
	"StateMachine": "AWS::Serverless::StateMachine",
	"LayerVersion": "AWS::Serverless::LayerVersion",
}

// applyGlobals merges each Globals section into the resources of its type,
// with SAM's rules (samtranslator/plugins/globals/globals.py):
//   - a value given by the resource wins over the global one;
//   - two mappings merge key by key, recursively (so Environment.Variables
//     from both sides are kept);
//   - two lists concatenate, global entries first;
//   - an intrinsic function counts as a plain value, never merged;
//   - values of different kinds: the resource's wins.
func applyGlobals(t *Template) {
	for section, globals := range t.Globals {
		typ := globalsSections[section]
		for _, id := range t.ResourceIDs(typ) {
			r := t.Resources[id]
			props := r.Properties
			for key, gv := range globals {
				if ignoresGlobal(r.IgnoreGlobals, key) {
					continue
				}
				if lv, ok := props[key]; ok {
					props[key] = mergeGlobal(gv, lv)
				} else {
					props[key] = deepCopy(gv)
				}
			}
			t.Resources[id] = r
		}
	}
}

func ignoresGlobal(ignored []string, key string) bool {
	for _, k := range ignored {
		if k == "*" || k == key {
			return true
		}
	}
	return false
}

func mergeGlobal(global, local any) any {
	gm, gIsMap := global.(map[string]any)
	lm, lIsMap := local.(map[string]any)
	if gIsMap && lIsMap && !isIntrinsic(gm) && !isIntrinsic(lm) {
		out := make(map[string]any, len(gm)+len(lm))
		for k, v := range gm {
			out[k] = deepCopy(v)
		}
		for k, v := range lm {
			if gv, ok := gm[k]; ok {
				out[k] = mergeGlobal(gv, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	gl, gIsList := global.([]any)
	ll, lIsList := local.([]any)
	if gIsList && lIsList {
		out := make([]any, 0, len(gl)+len(ll))
		for _, v := range gl {
			out = append(out, deepCopy(v))
		}
		return append(out, ll...)
	}
	return local
}

// isIntrinsic reports whether m is an intrinsic function call: a mapping
// with one key that is Ref, Condition or Fn::*.
func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// deepCopy copies the mutable parts of a tree so that a Globals value
// merged into several resources is never shared between them.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// Error locates a template problem: Path is a dotted path from the
// template's root, such as
// "Resources.ApiFunction.Properties.Environment.Variables.TABLE_NAME".
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// at prefixes err's path with prefix, keeping one *Error so nested
// sections read as one dotted path.
func at(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e == err {
		p := prefix
		if e.Path != "" {
			if strings.HasPrefix(e.Path, "[") {
				p += e.Path
			} else {
				p += "." + e.Path
			}
		}
		return &Error{Path: p, Err: e.Err}
	}
	return &Error{Path: prefix, Err: err}
}

// joinPath extends a dotted path with a key or an index.
func joinPath(path string, key any) string {
	switch k := key.(type) {
	case int:
		return fmt.Sprintf("%s[%d]", path, k)
	default:
		if path == "" {
			return fmt.Sprint(k)
		}
		return fmt.Sprintf("%s.%v", path, k)
	}
}
