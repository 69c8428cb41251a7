package httpgw

import "crypto/rand"

// idAlphabet is the character set of API Gateway's request ids.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newRequestID returns an id in API Gateway's HTTP API format: 15
// alphanumeric characters and a trailing '=' (e.g. "JKJaXmPLvHcESHA="),
// used both as requestContext.requestId and the apigw-requestid header.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:15]) // crypto/rand.Read never fails (Go 1.24+)
	for i := range 15 {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	b[15] = '='
	return string(b[:])
}
