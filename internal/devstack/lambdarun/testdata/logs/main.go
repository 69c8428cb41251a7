// Command logs is a test function that writes lines to stdout and stderr,
// some of them in several partial writes, then returns "ok".
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func() (string, error) {
		fmt.Fprintln(os.Stdout, `{"level":"INFO","msg":"hello from stdout"}`)
		fmt.Fprint(os.Stderr, "partial ")
		fmt.Fprint(os.Stderr, "line ")
		fmt.Fprintln(os.Stderr, "joined")
		for i := range 50 {
			fmt.Fprintf(os.Stdout, "line %02d %s\n", i, "0123456789abcdef0123456789abcdef")
		}
		return "ok", nil
	})
}
