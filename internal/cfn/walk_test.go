package cfn

import (
	"errors"
	"reflect"
	"testing"
)

// TestRewrite pins the one walker's grammar: which mappings are calls, the
// order and paths calls are visited in, what is dropped, and that the input
// is left as it was.
func TestRewrite(t *testing.T) {
	tests := []struct {
		name      string
		in        any
		want      any
		wantCalls []string // "path fn"
		wantErr   bool
	}{
		{
			name:      "calls in sorted key order with paths",
			in:        map[string]any{"b": []any{"x", map[string]any{"Ref": "B"}}, "a": map[string]any{"Fn::Sub": "s"}},
			want:      map[string]any{"a": "<Fn::Sub>", "b": []any{"x", "<Ref>"}},
			wantCalls: []string{"P.a Fn::Sub", "P.b[1] Ref"},
		},
		{
			name: "a one-key Condition is an ordinary mapping",
			in:   map[string]any{"Condition": map[string]any{"Ref": "C"}},
			want: map[string]any{"Condition": "<Ref>"},
			// The Ref inside is a call; the Condition around it is not.
			wantCalls: []string{"P.Condition Ref"},
		},
		{
			name: "a mapping with more keys is not a call",
			in:   map[string]any{"Ref": "A", "Other": 1},
			want: map[string]any{"Ref": "A", "Other": 1},
		},
		{
			name:      "a call's argument is left to the caller",
			in:        map[string]any{"Fn::Join": []any{",", []any{map[string]any{"Ref": "A"}}}},
			want:      "<Fn::Join>",
			wantCalls: []string{"P Fn::Join"},
		},
		{
			name:      "AWS::NoValue entries and elements are dropped",
			in:        map[string]any{"k": map[string]any{"Ref": "AWS::NoValue"}, "l": []any{map[string]any{"Ref": "AWS::NoValue"}, 1}},
			want:      map[string]any{"l": []any{1}},
			wantCalls: []string{"P.k Ref", "P.l[0] Ref"},
		},
		{
			name:      "the first error stops the walk",
			in:        []any{map[string]any{"Fn::Fail": 1}, map[string]any{"Ref": "A"}},
			wantCalls: []string{"P[0] Fn::Fail"},
			wantErr:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.in)
			var calls []string
			got, err := Rewrite(tc.in, "P", func(fn string, arg any, path string) (any, error) {
				calls = append(calls, path+" "+fn)
				switch {
				case fn == "Fn::Fail":
					return nil, errors.New("fail")
				case fn == "Ref" && arg == "AWS::NoValue":
					return noValue{}, nil
				}
				return "<" + fn + ">", nil
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
			if !reflect.DeepEqual(calls, tc.wantCalls) {
				t.Errorf("calls %q, want %q", calls, tc.wantCalls)
			}
			if !reflect.DeepEqual(tc.in, before) {
				t.Errorf("input changed to %#v", tc.in)
			}
		})
	}
}
