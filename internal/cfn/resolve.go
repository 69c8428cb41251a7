package cfn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Pseudo holds the values of the AWS:: pseudo parameters.
type Pseudo struct {
	Region    string
	AccountID string
	StackName string
	// StackID defaults to an ARN derived from the other fields.
	StackID   string
	Partition string
	URLSuffix string
}

// ResourceResolver supplies what Ref and Fn::GetAtt of a resource return.
// The caller decides: a local stack answers with the names and endpoints of
// what it emulates; a checker answers with placeholders.
type ResourceResolver interface {
	Ref(logicalID string, r Resource) (any, error)
	GetAtt(logicalID string, r Resource, attribute string) (any, error)
}

// Options configures a Context.
type Options struct {
	// Parameters overrides parameter defaults; list parameters take their
	// comma-delimited form, as on the CloudFormation command line.
	Parameters map[string]string
	Pseudo     Pseudo
	// Resources resolves Ref and Fn::GetAtt of resources. Without it, any
	// such reference is an error.
	Resources ResourceResolver
	// ImportValue resolves Fn::ImportValue. Without it, Fn::ImportValue is
	// an error.
	ImportValue func(name string) (any, error)
}

// Context evaluates one template with fixed parameter values. It caches
// condition results; it is not safe for concurrent use.
type Context struct {
	t          *Template
	params     map[string]any
	pseudo     map[string]any
	resources  ResourceResolver
	imports    func(string) (any, error)
	conditions map[string]bool
	evaluating map[string]bool
}

// noValue is what Ref AWS::NoValue resolves to: the enclosing property or
// list element is removed.
type noValue struct{}

// NewContext checks the parameter values (defaults and overrides) against
// their declarations and returns a Context for resolving the template.
func NewContext(t *Template, opts Options) (*Context, error) {
	c := &Context{
		t:          t,
		params:     map[string]any{},
		resources:  opts.Resources,
		imports:    opts.ImportValue,
		conditions: map[string]bool{},
		evaluating: map[string]bool{},
	}
	for name := range opts.Parameters {
		if _, ok := t.Parameters[name]; !ok {
			return nil, &Error{Path: "Parameters", Err: fmt.Errorf("override for undeclared parameter %q", name)}
		}
	}
	names := make([]string, 0, len(t.Parameters))
	for name := range t.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		p := t.Parameters[name]
		raw, ok := opts.Parameters[name]
		if !ok {
			if !p.HasDefault {
				errs = append(errs, &Error{Path: "Parameters." + name, Err: errors.New("no value given and no Default")})
				continue
			}
			raw = p.Default
		}
		v, err := parameterValue(p, raw)
		if err != nil {
			errs = append(errs, &Error{Path: "Parameters." + name, Err: err})
			continue
		}
		c.params[name] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.pseudo = pseudoValues(opts.Pseudo)
	return c, nil
}

// pseudoValues fills in the pseudo parameters the caller left empty. The
// local stack always passes its own region and account
// (internal/devstack/localaws); these defaults serve a template evaluated
// on its own, by the template checks. They deliberately stay here rather
// than import the local stack: cfn sits below it. The account is the
// example CloudFormation's pseudo parameter reference uses
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html),
// so a checked template never shows the local stack's account.
func pseudoValues(p Pseudo) map[string]any {
	if p.Region == "" {
		p.Region = "us-east-1"
	}
	if p.AccountID == "" {
		p.AccountID = "123456789012"
	}
	if p.StackName == "" {
		p.StackName = "local"
	}
	if p.Partition == "" {
		p.Partition = "aws"
	}
	if p.URLSuffix == "" {
		p.URLSuffix = "amazonaws.com"
	}
	if p.StackID == "" {
		p.StackID = fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000",
			p.Partition, p.Region, p.AccountID, p.StackName)
	}
	return map[string]any{
		"AWS::Region":           p.Region,
		"AWS::AccountId":        p.AccountID,
		"AWS::StackName":        p.StackName,
		"AWS::StackId":          p.StackID,
		"AWS::Partition":        p.Partition,
		"AWS::URLSuffix":        p.URLSuffix,
		"AWS::NotificationARNs": []any{},
		"AWS::NoValue":          noValue{},
	}
}

// IsPseudoParameter reports whether name is an AWS:: pseudo parameter.
func IsPseudoParameter(name string) bool {
	_, ok := pseudoValues(Pseudo{})[name]
	return ok
}

// parameterValue checks raw against the declaration and returns what Ref
// yields: a string, or a list of strings for list types. Number parameters
// stay strings, as in CloudFormation.
func parameterValue(p Parameter, raw string) (any, error) {
	isList := p.Type == "CommaDelimitedList" || strings.HasPrefix(p.Type, "List<")
	var items []string
	if isList {
		if raw != "" {
			for _, s := range strings.Split(raw, ",") {
				items = append(items, strings.TrimSpace(s))
			}
		}
	} else {
		items = []string{raw}
	}
	numeric := p.Type == "Number" || p.Type == "List<Number>"
	for _, s := range items {
		if err := checkParameterValue(p, s, numeric); err != nil {
			return nil, err
		}
	}
	if !isList {
		return raw, nil
	}
	out := make([]any, len(items))
	for i, s := range items {
		out[i] = s
	}
	return out, nil
}

func checkParameterValue(p Parameter, s string, numeric bool) error {
	if strings.HasPrefix(p.Type, "AWS::SSM::Parameter::Value<") {
		return fmt.Errorf("type %s needs SSM, which is not available here; give the value as an override of a String parameter", p.Type)
	}
	if numeric {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("value %q is not a number", s)
		}
		if p.MinValue != nil && f < *p.MinValue {
			return fmt.Errorf("value %s is below MinValue %v", s, *p.MinValue)
		}
		if p.MaxValue != nil && f > *p.MaxValue {
			return fmt.Errorf("value %s is above MaxValue %v", s, *p.MaxValue)
		}
	}
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, s) {
		return fmt.Errorf("value %q is not one of AllowedValues %q", s, p.AllowedValues)
	}
	if p.AllowedPattern != "" {
		re, err := regexp.Compile("^(?:" + p.AllowedPattern + ")$")
		if err != nil {
			return fmt.Errorf("AllowedPattern: %w", err)
		}
		if !re.MatchString(s) {
			return fmt.Errorf("value %q does not match AllowedPattern %s", s, p.AllowedPattern)
		}
	}
	n := len([]rune(s))
	if p.MinLength != nil && n < *p.MinLength {
		return fmt.Errorf("value %q is shorter than MinLength %d", s, *p.MinLength)
	}
	if p.MaxLength != nil && n > *p.MaxLength {
		return fmt.Errorf("value %q is longer than MaxLength %d", s, *p.MaxLength)
	}
	return nil
}

// Template returns the template the context evaluates.
func (c *Context) Template() *Template { return c.t }

// Parameter returns a parameter's effective value (string or []any).
func (c *Context) Parameter(name string) (any, bool) {
	v, ok := c.params[name]
	return v, ok
}

// Condition evaluates the named condition.
func (c *Context) Condition(name string) (bool, error) {
	if v, ok := c.conditions[name]; ok {
		return v, nil
	}
	expr, ok := c.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition named %q", name)
	}
	if c.evaluating[name] {
		return false, fmt.Errorf("condition %q refers to itself", name)
	}
	c.evaluating[name] = true
	defer delete(c.evaluating, name)
	v, err := c.evalCondition(expr, "")
	if err != nil {
		return false, at("Conditions."+name, err)
	}
	c.conditions[name] = v
	return v, nil
}

// Enabled reports whether the resource is created: it exists and its
// Condition, if any, is true.
func (c *Context) Enabled(logicalID string) (bool, error) {
	r, ok := c.t.Resources[logicalID]
	if !ok {
		return false, fmt.Errorf("no resource named %q", logicalID)
	}
	if r.Condition == "" {
		return true, nil
	}
	v, err := c.Condition(r.Condition)
	if err != nil {
		return false, at("Resources."+logicalID+".Condition", err)
	}
	return v, nil
}

// Properties returns the resource's properties with every intrinsic
// resolved. Errors carry the property path.
func (c *Context) Properties(logicalID string) (map[string]any, error) {
	r, ok := c.t.Resources[logicalID]
	if !ok {
		return nil, fmt.Errorf("no resource named %q", logicalID)
	}
	v, err := c.resolve(r.Properties, "Resources."+logicalID+".Properties")
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// Outputs resolves the Value of every output whose Condition holds.
func (c *Context) Outputs() (map[string]any, error) {
	out := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(c.t.Outputs)) {
		o := c.t.Outputs[name]
		if o.Condition != "" {
			ok, err := c.Condition(o.Condition)
			if err != nil {
				return nil, at("Outputs."+name+".Condition", err)
			}
			if !ok {
				continue
			}
		}
		v, err := c.resolve(o.Value, "Outputs."+name+".Value")
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// Resolve returns value with every intrinsic function resolved. A property
// or list element that resolves to AWS::NoValue is removed; a value that is
// AWS::NoValue as a whole resolves to nil.
func Resolve(value any, c *Context) (any, error) {
	v, err := c.resolve(value, "")
	if _, ok := v.(noValue); ok {
		return nil, err
	}
	return v, err
}

func (c *Context) resolve(v any, path string) (any, error) {
	return Rewrite(v, path, func(fn string, arg any, path string) (any, error) {
		out, err := c.intrinsic(fn, arg, path)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, err
			}
			return nil, &Error{Path: path, Err: fmt.Errorf("%s: %w", fn, err)}
		}
		return out, nil
	})
}

func (c *Context) intrinsic(fn string, arg any, path string) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("takes a name, got %s", kindOf(arg))
		}
		return c.ref(name)
	case "Fn::GetAtt":
		id, attr, err := c.getAttArgs(arg, path)
		if err != nil {
			return nil, err
		}
		return c.getAtt(id, attr)
	case "Fn::Sub":
		return c.sub(arg, path)
	case "Fn::If":
		args, err := argList(arg, 3)
		if err != nil {
			return nil, err
		}
		name, ok := args[0].(string)
		if !ok {
			return nil, errors.New("first argument must be a condition name")
		}
		cond, err := c.Condition(name)
		if err != nil {
			return nil, &Error{Path: joinPath(path, "Fn::If[0]"), Err: err}
		}
		if cond {
			return c.resolve(args[1], joinPath(path, "Fn::If[1]"))
		}
		return c.resolve(args[2], joinPath(path, "Fn::If[2]"))
	case "Fn::Join":
		args, err := argList(arg, 2)
		if err != nil {
			return nil, err
		}
		delim, ok := args[0].(string)
		if !ok {
			return nil, errors.New("delimiter must be a string")
		}
		items, err := c.resolveList(args[1], path)
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(items))
		for i, it := range items {
			if parts[i], err = scalarString(it); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		args, err := argList(arg, 2)
		if err != nil {
			return nil, err
		}
		idxV, err := c.resolve(args[0], path)
		if err != nil {
			return nil, err
		}
		idxS, err := scalarString(idxV)
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		idx, err := strconv.Atoi(idxS)
		if err != nil {
			return nil, fmt.Errorf("index %q is not an integer", idxS)
		}
		items, err := c.resolveList(args[1], path)
		if err != nil {
			return nil, err
		}
		if idx < 0 || idx >= len(items) {
			return nil, fmt.Errorf("index %d out of range for a list of %d", idx, len(items))
		}
		return items[idx], nil
	case "Fn::Split":
		args, err := argList(arg, 2)
		if err != nil {
			return nil, err
		}
		delim, ok := args[0].(string)
		if !ok || delim == "" {
			return nil, errors.New("delimiter must be a non-empty string")
		}
		sv, err := c.resolve(args[1], path)
		if err != nil {
			return nil, err
		}
		s, ok := sv.(string)
		if !ok {
			return nil, fmt.Errorf("source must be a string, got %s", kindOf(sv))
		}
		parts := strings.Split(s, delim)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "Fn::FindInMap":
		return c.findInMap(arg, path)
	case "Fn::GetAZs":
		rv, err := c.resolve(arg, path)
		if err != nil {
			return nil, err
		}
		region, _ := rv.(string)
		if region == "" {
			region = c.pseudo["AWS::Region"].(string)
		}
		// A local evaluation has no EC2 to ask; three zones is what every
		// commercial Region offers at least.
		return []any{region + "a", region + "b", region + "c"}, nil
	case "Fn::ImportValue":
		if c.imports == nil {
			return nil, errors.New("no export resolver configured")
		}
		nv, err := c.resolve(arg, path)
		if err != nil {
			return nil, err
		}
		name, ok := nv.(string)
		if !ok {
			return nil, fmt.Errorf("export name must be a string, got %s", kindOf(nv))
		}
		return c.imports(name)
	case "Fn::Base64":
		sv, err := c.resolve(arg, path)
		if err != nil {
			return nil, err
		}
		s, err := scalarString(sv)
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not":
		return nil, errors.New("condition functions are only allowed in Conditions and Fn::If")
	}
	return nil, errors.New("unsupported intrinsic function")
}

func (c *Context) resolveList(v any, path string) ([]any, error) {
	r, err := c.resolve(v, path)
	if err != nil {
		return nil, err
	}
	l, ok := r.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %s", kindOf(r))
	}
	return l, nil
}

func argList(arg any, n int) ([]any, error) {
	l, ok := arg.([]any)
	if !ok || len(l) != n {
		return nil, fmt.Errorf("takes a list of %d arguments", n)
	}
	return l, nil
}

func (c *Context) ref(name string) (any, error) {
	if v, ok := c.params[name]; ok {
		return v, nil
	}
	if v, ok := c.pseudo[name]; ok {
		return v, nil
	}
	r, ok := c.t.Resources[name]
	if !ok {
		return nil, fmt.Errorf("%q is not a parameter, pseudo parameter or resource", name)
	}
	if c.resources == nil {
		return nil, fmt.Errorf("resource %q: no resource resolver configured", name)
	}
	v, err := c.resources.Ref(name, r)
	if err != nil {
		return nil, fmt.Errorf("resource %q: %w", name, err)
	}
	return v, nil
}

func (c *Context) getAttArgs(arg any, path string) (string, string, error) {
	if s, ok := arg.(string); ok {
		id, attr, found := strings.Cut(s, ".")
		if !found {
			return "", "", fmt.Errorf("%q: want Resource.Attribute", s)
		}
		return id, attr, nil
	}
	args, err := argList(arg, 2)
	if err != nil {
		return "", "", err
	}
	id, ok := args[0].(string)
	if !ok {
		return "", "", errors.New("resource name must be a string")
	}
	av, err := c.resolve(args[1], path)
	if err != nil {
		return "", "", err
	}
	attr, ok := av.(string)
	if !ok {
		return "", "", fmt.Errorf("attribute name must be a string, got %s", kindOf(av))
	}
	return id, attr, nil
}

func (c *Context) getAtt(id, attr string) (any, error) {
	r, ok := c.t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("%s.%s: no resource named %q", id, attr, id)
	}
	if !AttributeKnown(r.Type, attr) {
		return nil, fmt.Errorf("%s.%s: %s has no attribute %q", id, attr, r.Type, attr)
	}
	if c.resources == nil {
		return nil, fmt.Errorf("%s.%s: no resource resolver configured", id, attr)
	}
	v, err := c.resources.GetAtt(id, r, attr)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", id, attr, err)
	}
	return v, nil
}

func (c *Context) sub(arg any, path string) (any, error) {
	format, vars, err := subArgs(arg)
	if err != nil {
		return nil, err
	}
	resolved := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		v, err := c.resolve(vars[k], joinPath(path, k))
		if err != nil {
			return nil, err
		}
		resolved[k] = v
	}
	return expandSub(format, func(name string) (string, error) {
		var v any
		if lv, ok := resolved[name]; ok {
			v = lv
		} else if id, attr, isAtt := strings.Cut(name, "."); isAtt {
			if v, err = c.getAtt(id, attr); err != nil {
				return "", err
			}
		} else if v, err = c.ref(name); err != nil {
			return "", err
		}
		s, err := scalarString(v)
		if err != nil {
			return "", fmt.Errorf("${%s}: %w", name, err)
		}
		return s, nil
	})
}

// subArgs splits Fn::Sub's argument into the format string and the
// variable map.
func subArgs(arg any) (string, map[string]any, error) {
	if s, ok := arg.(string); ok {
		return s, nil, nil
	}
	l, ok := arg.([]any)
	if !ok || len(l) != 2 {
		return "", nil, errors.New("takes a string or [string, {variables}]")
	}
	s, ok := l[0].(string)
	if !ok {
		return "", nil, errors.New("format must be a string")
	}
	vars, ok := l[1].(map[string]any)
	if !ok {
		return "", nil, errors.New("variables must be a mapping")
	}
	return s, vars, nil
}

// expandSub replaces each ${Name} with lookup(Name); ${!Text} is the
// literal ${Text}.
func expandSub(format string, lookup func(string) (string, error)) (string, error) {
	var b strings.Builder
	rest := format
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", format)
		}
		name := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return "", fmt.Errorf("empty ${} in %q", format)
		}
		s, err := lookup(name)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
}

// subVariables lists the variable names a Fn::Sub format refers to.
func subVariables(format string) ([]string, error) {
	var names []string
	_, err := expandSub(format, func(name string) (string, error) {
		names = append(names, name)
		return "", nil
	})
	return names, err
}

func (c *Context) findInMap(arg any, path string) (any, error) {
	l, ok := arg.([]any)
	if !ok || (len(l) != 3 && len(l) != 4) {
		return nil, errors.New("takes [MapName, TopLevelKey, SecondLevelKey] and an optional {DefaultValue: ...}")
	}
	keys := make([]string, 3)
	for i := range keys {
		v, err := c.resolve(l[i], path)
		if err != nil {
			return nil, err
		}
		if keys[i], err = scalarString(v); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
	}
	if top, ok := c.t.Mappings[keys[0]].(map[string]any); ok {
		if second, ok := top[keys[1]].(map[string]any); ok {
			if v, ok := second[keys[2]]; ok {
				return c.resolve(v, path)
			}
		}
	}
	if len(l) == 4 {
		if d, ok := l[3].(map[string]any); ok {
			if v, ok := d["DefaultValue"]; ok {
				return c.resolve(v, path)
			}
		}
	}
	return nil, fmt.Errorf("no value for [%s, %s, %s] in Mappings", keys[0], keys[1], keys[2])
}

func (c *Context) evalCondition(expr any, path string) (bool, error) {
	fn, arg, ok := singleKey(expr)
	if !ok {
		return false, &Error{Path: path, Err: errors.New("a condition must be one of Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition")}
	}
	switch fn {
	case "Condition":
		name, ok := arg.(string)
		if !ok {
			return false, &Error{Path: path, Err: errors.New("Condition takes a name")}
		}
		v, err := c.Condition(name)
		if err != nil {
			return false, &Error{Path: path, Err: err}
		}
		return v, nil
	case "Fn::Equals":
		args, err := argList(arg, 2)
		if err != nil {
			return false, &Error{Path: path, Err: fmt.Errorf("%s: %w", fn, err)}
		}
		var vals [2]string
		for i, a := range args {
			r, err := c.resolve(a, joinPath(path, fn))
			if err != nil {
				return false, err
			}
			if vals[i], err = commaDelimited(r); err != nil {
				return false, &Error{Path: path, Err: fmt.Errorf("%s: %w", fn, err)}
			}
		}
		return vals[0] == vals[1], nil
	case "Fn::Not":
		args, err := argList(arg, 1)
		if err != nil {
			return false, &Error{Path: path, Err: fmt.Errorf("%s: %w", fn, err)}
		}
		v, err := c.evalCondition(args[0], joinPath(path, fn))
		return !v, err
	case "Fn::And", "Fn::Or":
		l, ok := arg.([]any)
		// CloudFormation allows 2 to 10 operands.
		if !ok || len(l) < 2 || len(l) > 10 {
			return false, &Error{Path: path, Err: fmt.Errorf("%s takes a list of 2 to 10 conditions", fn)}
		}
		for i, e := range l {
			v, err := c.evalCondition(e, joinPath(joinPath(path, fn), i))
			if err != nil {
				return false, err
			}
			if fn == "Fn::And" && !v {
				return false, nil
			}
			if fn == "Fn::Or" && v {
				return true, nil
			}
		}
		return fn == "Fn::And", nil
	}
	return false, &Error{Path: path, Err: fmt.Errorf("%s is not a condition function", fn)}
}

// singleKey returns the only key and value of a one-key mapping.
func singleKey(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, e := range m {
		return k, e, true
	}
	return "", nil, false
}
