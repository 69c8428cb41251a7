// Command initfail is a test function that fails during init: with
// MODE=exit it exits like a main that cannot load its configuration; with
// MODE=report it first reports the failure to the Runtime API's init/error
// endpoint, as custom runtimes do.
package main

import (
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	if os.Getenv("MODE") == "report" {
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		body := strings.NewReader(`{"errorType":"ConfigError","errorMessage":"TABLE_NAME is not set"}`)
		req, err := http.NewRequest(http.MethodPost, url, body)
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "ConfigError")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		os.Exit(1)
	}
	log.Fatal("config: TABLE_NAME is not set")
}
