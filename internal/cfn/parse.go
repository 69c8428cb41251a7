package cfn

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// shortForms maps each short-form YAML tag to the long-form key it stands
// for. !GetAtt and !Condition get extra handling in convertTagged.
var shortForms = map[string]string{
	"!Ref":         "Ref",
	"!Condition":   "Condition",
	"!GetAtt":      "Fn::GetAtt",
	"!Sub":         "Fn::Sub",
	"!If":          "Fn::If",
	"!Equals":      "Fn::Equals",
	"!Not":         "Fn::Not",
	"!And":         "Fn::And",
	"!Or":          "Fn::Or",
	"!Join":        "Fn::Join",
	"!Select":      "Fn::Select",
	"!Split":       "Fn::Split",
	"!FindInMap":   "Fn::FindInMap",
	"!GetAZs":      "Fn::GetAZs",
	"!ImportValue": "Fn::ImportValue",
	"!Base64":      "Fn::Base64",
	"!Cidr":        "Fn::Cidr",
	"!Transform":   "Fn::Transform",
}

// Parse reads a template in YAML (with or without short-form tags) or JSON,
// checks its structure and applies SAM Globals.
func Parse(data []byte) (*Template, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("template is empty")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	tree, err := convertNode(&doc)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	root, ok := tree.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template must be a mapping, got %s", kindOf(tree))
	}
	t, err := decodeTemplate(root)
	if err != nil {
		return nil, err
	}
	applyGlobals(t)
	return t, nil
}

// convertNode turns a yaml.v3 node into the generic tree, rewriting short
// form tags to long form.
func convertNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convertNode(n.Content[0])
	case yaml.AliasNode:
		return convertNode(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return convertTagged(n)
	}
	return convertPlain(n)
}

// convertPlain converts a node as if it had no custom tag.
func convertPlain(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return convertScalar(n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convertNode(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys (<<) are not supported by CloudFormation", k.Line)
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be scalars", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				// CloudFormation rejects duplicate keys; silently keeping
				// the last one would hide a real mistake.
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := convertNode(vn)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.AliasNode, yaml.DocumentNode:
		return convertNode(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func convertScalar(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!!str", "!!timestamp", "!!binary":
		// Timestamps stay strings: AWSTemplateFormatVersion: 2010-09-09
		// is a version label, not a date.
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return b, nil
	case "!!int":
		if i, err := strconv.Atoi(n.Value); err == nil {
			return i, nil
		}
		var i int
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return i, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return f, nil
	}
	return n.Value, nil
}

func convertTagged(n *yaml.Node) (any, error) {
	key, ok := shortForms[n.Tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	switch n.Tag {
	case "!GetAtt":
		// !GetAtt Resource.Attribute splits at the first dot only: logical
		// ids cannot contain dots, attribute names can (Endpoint.Address).
		if n.Kind == yaml.ScalarNode {
			id, attr, found := strings.Cut(n.Value, ".")
			if !found || id == "" || attr == "" {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, n.Value)
			}
			return map[string]any{key: []any{id, attr}}, nil
		}
	case "!Ref", "!Condition":
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s takes a name", n.Line, n.Tag)
		}
	}
	inner, err := convertPlain(n)
	if err != nil {
		return nil, err
	}
	return map[string]any{key: inner}, nil
}

func decodeTemplate(root map[string]any) (*Template, error) {
	t := &Template{
		Parameters: map[string]Parameter{},
		Conditions: map[string]any{},
		Mappings:   map[string]any{},
		Rules:      map[string]any{},
		Globals:    map[string]map[string]any{},
		Resources:  map[string]Resource{},
		Outputs:    map[string]Output{},
	}
	for section, v := range root {
		var err error
		switch section {
		case "AWSTemplateFormatVersion":
			t.FormatVersion, err = asString(v)
		case "Description":
			t.Description, err = asString(v)
		case "Transform":
			t.Transform, err = stringOrList(v)
		case "Metadata":
			t.Metadata, err = asMap(v)
		case "Mappings":
			t.Mappings, err = asMap(v)
		case "Conditions":
			t.Conditions, err = asMap(v)
		case "Rules":
			t.Rules, err = asMap(v)
		case "Parameters":
			err = decodeParameters(t, v)
		case "Globals":
			err = decodeGlobals(t, v)
		case "Resources":
			err = decodeResources(t, v)
		case "Outputs":
			err = decodeOutputs(t, v)
		default:
			err = errors.New("unknown top-level section")
		}
		if err != nil {
			return nil, at(section, err)
		}
	}
	if len(t.Resources) == 0 {
		return nil, &Error{Path: "Resources", Err: errors.New("a template needs at least one resource")}
	}
	return t, nil
}

func decodeParameters(t *Template, v any) error {
	m, err := asMap(v)
	if err != nil {
		return err
	}
	for name, raw := range m {
		p, err := decodeParameter(raw)
		if err != nil {
			return at(name, err)
		}
		t.Parameters[name] = p
	}
	return nil
}

func decodeParameter(raw any) (Parameter, error) {
	m, err := asMap(raw)
	if err != nil {
		return Parameter{}, err
	}
	var p Parameter
	for k, v := range m {
		switch k {
		case "Type":
			p.Type, err = asString(v)
		case "Description":
			p.Description, err = asString(v)
		case "Default":
			p.HasDefault = true
			p.Default, err = commaDelimited(v)
		case "AllowedValues":
			p.AllowedValues, err = scalarList(v)
		case "AllowedPattern":
			p.AllowedPattern, err = asString(v)
		case "ConstraintDescription":
			p.ConstraintDescription, err = asString(v)
		case "NoEcho":
			p.NoEcho, err = asBool(v)
		case "MinLength":
			p.MinLength, err = intPtr(v)
		case "MaxLength":
			p.MaxLength, err = intPtr(v)
		case "MinValue":
			p.MinValue, err = floatPtr(v)
		case "MaxValue":
			p.MaxValue, err = floatPtr(v)
		default:
			err = errors.New("unknown parameter attribute")
		}
		if err != nil {
			return Parameter{}, at(k, err)
		}
	}
	if p.Type == "" {
		return Parameter{}, errors.New("parameter needs a Type")
	}
	return p, nil
}

// commaDelimited renders a scalar as a string and a list as its
// comma-delimited form, the way CloudFormation holds list parameters: a
// parameter's default is stored so, and Fn::Equals compares list operands so.
func commaDelimited(v any) (string, error) {
	if l, ok := v.([]any); ok {
		parts, err := scalarList(l)
		if err != nil {
			return "", err
		}
		return strings.Join(parts, ","), nil
	}
	return scalarString(v)
}

func decodeGlobals(t *Template, v any) error {
	m, err := asMap(v)
	if err != nil {
		return err
	}
	for section, raw := range m {
		props, err := asMap(raw)
		if err != nil {
			return at(section, err)
		}
		if _, ok := globalsSections[section]; !ok {
			return &Error{Path: section, Err: errors.New("not a SAM Globals section (want one of Function, Api, HttpApi, SimpleTable, StateMachine, LayerVersion)")}
		}
		t.Globals[section] = props
	}
	return nil
}

func decodeResources(t *Template, v any) error {
	m, err := asMap(v)
	if err != nil {
		return err
	}
	for id, raw := range m {
		if !validLogicalID(id) {
			return &Error{Path: id, Err: errors.New("logical ids must be alphanumeric")}
		}
		r, err := decodeResource(raw)
		if err != nil {
			return at(id, err)
		}
		t.Resources[id] = r
	}
	return nil
}

func decodeResource(raw any) (Resource, error) {
	m, err := asMap(raw)
	if err != nil {
		return Resource{}, err
	}
	var r Resource
	for k, v := range m {
		switch k {
		case "Type":
			r.Type, err = asString(v)
		case "Properties":
			r.Properties, err = asMap(v)
		case "Condition":
			r.Condition, err = asString(v)
		case "DependsOn":
			r.DependsOn, err = stringOrList(v)
		case "Metadata":
			r.Metadata, err = asMap(v)
		case "DeletionPolicy":
			r.DeletionPolicy, err = asString(v)
		case "UpdateReplacePolicy":
			r.UpdateReplacePolicy, err = asString(v)
		case "IgnoreGlobals":
			r.IgnoreGlobals, err = stringOrList(v)
		case "UpdatePolicy", "CreationPolicy", "Version", "Connectors":
			// Deployment-time attributes that evaluation does not need.
		default:
			err = errors.New("unknown resource attribute")
		}
		if err != nil {
			return Resource{}, at(k, err)
		}
	}
	if r.Type == "" {
		return Resource{}, errors.New("resource needs a Type")
	}
	if r.Properties == nil {
		r.Properties = map[string]any{}
	}
	return r, nil
}

func decodeOutputs(t *Template, v any) error {
	m, err := asMap(v)
	if err != nil {
		return err
	}
	for name, raw := range m {
		om, err := asMap(raw)
		if err != nil {
			return at(name, err)
		}
		var o Output
		for k, v := range om {
			switch k {
			case "Value":
				o.Value = v
			case "Description":
				o.Description = v
			case "Export":
				o.Export, err = asMap(v)
			case "Condition":
				o.Condition, err = asString(v)
			default:
				err = errors.New("unknown output attribute")
			}
			if err != nil {
				return at(name+"."+k, err)
			}
		}
		if _, ok := om["Value"]; !ok {
			return &Error{Path: name, Err: errors.New("output needs a Value")}
		}
		t.Outputs[name] = o
	}
	return nil
}

func validLogicalID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func asMap(v any) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping, got %s", kindOf(v))
	}
	return m, nil
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", kindOf(v))
	}
	return s, nil
}

func asBool(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		return strconv.ParseBool(b)
	}
	return false, fmt.Errorf("want a boolean, got %s", kindOf(v))
}

func stringOrList(v any) ([]string, error) {
	if s, ok := v.(string); ok {
		return []string{s}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a string or a list of strings, got %s", kindOf(v))
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, err := asString(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func scalarList(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %s", kindOf(v))
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, err := scalarString(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// scalarString renders a scalar the way CloudFormation turns it into a
// string (numbers and booleans as written).
func scalarString(v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case int:
		return strconv.Itoa(s), nil
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(s), nil
	}
	return "", fmt.Errorf("want a scalar, got %s", kindOf(v))
}

func intPtr(v any) (*int, error) {
	s, err := scalarString(v)
	if err != nil {
		return nil, err
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("want an integer: %w", err)
	}
	return &i, nil
}

func floatPtr(v any) (*float64, error) {
	s, err := scalarString(v)
	if err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("want a number: %w", err)
	}
	return &f, nil
}

// kindOf names a tree value's kind for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
