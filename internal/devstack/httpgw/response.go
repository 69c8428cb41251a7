package httpgw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// response is the integration's answer in HTTP terms.
type response struct {
	status  int
	headers http.Header
	body    []byte
}

// structuredResponse is the payload format 2.0 response shape. It mirrors
// events.APIGatewayV2HTTPResponse, with header values that may be any JSON
// scalar (API Gateway accepts numbers and booleans there).
type structuredResponse struct {
	StatusCode        json.RawMessage              `json:"statusCode"`
	Headers           map[string]json.RawMessage   `json:"headers"`
	MultiValueHeaders map[string][]json.RawMessage `json:"multiValueHeaders"`
	Cookies           []string                     `json:"cookies"`
	Body              *string                      `json:"body"`
	IsBase64Encoded   bool                         `json:"isBase64Encoded"`
}

// parseResponse interprets a function's output like API Gateway's payload
// format 2.0: an object with statusCode is a structured response; any other
// valid JSON is the body of a 200 application/json response.
func parseResponse(out []byte) (response, error) {
	trimmed := bytes.TrimSpace(out)
	if !json.Valid(trimmed) {
		return response{}, errors.New("function output is not JSON")
	}
	var probe map[string]json.RawMessage
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &probe) != nil || probe["statusCode"] == nil {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		return response{status: http.StatusOK, headers: h, body: trimmed}, nil
	}

	var sr structuredResponse
	if err := json.Unmarshal(trimmed, &sr); err != nil {
		return response{}, fmt.Errorf("decode response: %w", err)
	}
	status, err := strconv.Atoi(string(sr.StatusCode))
	if err != nil || status < 100 || status > 599 {
		return response{}, fmt.Errorf("invalid statusCode %s", sr.StatusCode)
	}
	resp := response{status: status, headers: http.Header{}}
	for name, values := range sr.MultiValueHeaders {
		for _, v := range values {
			resp.headers.Add(name, scalarString(v))
		}
	}
	// Single-value headers replace multi-value ones of the same name.
	for name, v := range sr.Headers {
		resp.headers.Set(name, scalarString(v))
	}
	for _, c := range sr.Cookies {
		resp.headers.Add("Set-Cookie", c)
	}
	if sr.Body != nil {
		if sr.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*sr.Body)
			if err != nil {
				return response{}, fmt.Errorf("decode base64 body: %w", err)
			}
			resp.body = b
		} else {
			resp.body = []byte(*sr.Body)
		}
	}
	return resp, nil
}

func scalarString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// write sends the response. CORS headers set by the gateway win over the
// function's own, as in API Gateway.
func (resp response) write(w http.ResponseWriter, corsApplied bool) {
	h := w.Header()
	for name, values := range resp.headers {
		if corsApplied && strings.HasPrefix(strings.ToLower(name), "access-control-") {
			continue
		}
		h[http.CanonicalHeaderKey(name)] = values
	}
	if h.Get("Content-Type") == "" {
		// Keep Go from sniffing a content type the function did not set.
		h["Content-Type"] = nil
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}
