// Package cfn reads AWS CloudFormation and AWS SAM templates into a generic
// tree and evaluates them the way the deploy-time services do: SAM Globals
// are merged into the resources, Conditions are evaluated, and intrinsic
// functions (Ref, Fn::GetAtt, Fn::Sub, Fn::If, ...) are resolved against
// parameters, pseudo parameters and a caller-supplied resolver for
// resources.
//
// The tree uses the JSON form of a template throughout: short-form YAML tags
// such as !Ref or !GetAtt are rewritten to their long forms ({"Ref": ...},
// {"Fn::GetAtt": [...]}) while parsing, so every consumer handles exactly one
// representation. Values are map[string]any, []any, string, bool, int,
// float64 or nil.
//
// Nothing here is specific to one project: the local stack uses it to run
// any SAM template whose resources it can emulate.
package cfn

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Template is a parsed template with SAM Globals already applied to the
// resources they govern.
type Template struct {
	FormatVersion string
	Description   string
	// Transform lists the macros the template declares, such as
	// "AWS::Serverless-2016-10-31".
	Transform  []string
	Parameters map[string]Parameter
	Mappings   map[string]any
	// Conditions maps a condition name to its (unevaluated) expression.
	Conditions map[string]any
	// Rules is kept as written; it is only meaningful to CloudFormation's
	// parameter validation and is not evaluated here.
	Rules map[string]any
	// Globals maps a SAM Globals section ("Function", "HttpApi", ...) to its
	// properties, as written. Resources already include them.
	Globals   map[string]map[string]any
	Resources map[string]Resource
	Outputs   map[string]Output
	Metadata  map[string]any

	// Dir is the directory the template was loaded from ("" after Parse).
	// Relative paths in the template (CodeUri) are relative to it.
	Dir string
}

// Parameter is one entry of the Parameters section.
type Parameter struct {
	Type        string
	Description string
	// Default is the default value as CloudFormation stores it: a string,
	// with list defaults in comma-delimited form. HasDefault tells an empty
	// default ("") from none.
	Default               string
	HasDefault            bool
	AllowedValues         []string
	AllowedPattern        string
	ConstraintDescription string
	MinLength, MaxLength  *int
	MinValue, MaxValue    *float64
	NoEcho                bool
}

// Resource is one entry of the Resources section.
type Resource struct {
	Type       string
	Properties map[string]any
	// Condition names the condition that decides whether the resource is
	// created; "" means always.
	Condition           string
	DependsOn           []string
	Metadata            map[string]any
	DeletionPolicy      string
	UpdateReplacePolicy string
	// IgnoreGlobals lists the SAM Globals properties this resource opts out
	// of; ["*"] opts out of all of them.
	IgnoreGlobals []string
}

// Output is one entry of the Outputs section.
type Output struct {
	Description any
	Value       any
	// Export is the Export block ({"Name": ...}) or nil.
	Export    map[string]any
	Condition string
}

// Load reads and parses the template at path and records its directory in
// Template.Dir.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("template directory: %w", err)
	}
	t.Dir = abs
	return t, nil
}

// ResourceIDs returns the logical ids of the resources of type typ (all
// resources when typ is ""), sorted so callers iterate deterministically.
func (t *Template) ResourceIDs(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if typ == "" || r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// IsServerless reports whether the template declares the SAM transform.
func (t *Template) IsServerless() bool {
	for _, tr := range t.Transform {
		if tr == SAMTransform {
			return true
		}
	}
	return false
}

// SAMTransform is the Transform value of AWS SAM templates.
const SAMTransform = "AWS::Serverless-2016-10-31"
