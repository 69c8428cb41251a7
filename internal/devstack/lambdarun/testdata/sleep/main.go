// Command sleep is a test function that ignores its deadline and never
// answers, so the platform must enforce the timeout.
package main

import (
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func() error {
		time.Sleep(time.Hour)
		return nil
	})
}
