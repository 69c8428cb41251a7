package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// oneShotCloseTimeout bounds stopping the single instance after a one-shot
// invoke; it only needs to cover SIGTERM plus the default grace period.
const oneShotCloseTimeout = 5 * time.Second

// OneShot describes a single invocation, as `devstack invoke` or `sam local
// invoke` performs it.
type OneShot struct {
	RepoRoot string
	// Package is the function's package relative to RepoRoot ("./functions/api").
	Package string
	// Function configures the run; Binary is filled in by the build.
	Function Function
	Payload  []byte
	Region   string
}

// InvokeOnce builds the function, invokes it once with its logs streaming to
// w, stops it (so every log line is out), then writes the response to w
// (indented when it is JSON) or, for a function error, Lambda's error
// document. The returned error is the function's (*FunctionError) or one from
// building or running it.
func InvokeOnce(ctx context.Context, spec OneShot, w io.Writer) error {
	rt, err := New(Options{LogWriter: w, Region: spec.Region})
	if err != nil {
		return err
	}
	resp, invokeErr := buildAndInvoke(ctx, rt, spec)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oneShotCloseTimeout)
	defer cancel()
	if err := rt.Close(closeCtx); err != nil {
		return errors.Join(invokeErr, err)
	}
	return printResult(w, resp, invokeErr)
}

func buildAndInvoke(ctx context.Context, rt *Runtime, spec OneShot) ([]byte, error) {
	name := spec.Function.Name
	bins, err := rt.Build(ctx, BuildSpec{RepoRoot: spec.RepoRoot, Functions: map[string]string{name: spec.Package}})
	if err != nil {
		return nil, err
	}
	fn := spec.Function
	fn.Binary = bins[name]
	if err := rt.Register(fn); err != nil {
		return nil, err
	}
	return rt.Invoke(ctx, name, spec.Payload)
}

// InvokeAndPrint invokes a registered function and writes the response, or
// the function error document, to w. The function's own logs go to the
// Runtime's LogWriter.
func InvokeAndPrint(ctx context.Context, rt *Runtime, name string, payload []byte, w io.Writer) error {
	resp, err := rt.Invoke(ctx, name, payload)
	return printResult(w, resp, err)
}

// printResult writes a response or function error and returns err; other
// errors are returned without printing anything.
func printResult(w io.Writer, resp []byte, err error) error {
	var fe *FunctionError
	switch {
	case errors.As(err, &fe):
		resp = fe.JSON()
	case err != nil:
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, resp, "", "  ") == nil {
		resp = pretty.Bytes()
	}
	if _, werr := fmt.Fprintf(w, "%s\n", resp); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}
