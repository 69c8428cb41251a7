// Command fail is a test function whose handler returns an error; the library
// reports the error's type name as errorType.
package main

import "github.com/aws/aws-lambda-go/lambda"

type quotaError struct{ limit int }

func (e *quotaError) Error() string { return "quota exceeded" }

func main() {
	lambda.Start(func() error {
		return &quotaError{limit: 3}
	})
}
