// Package apigwid makes ids in API Gateway's format, shared by the local
// HTTP and WebSocket gateways.
package apigwid

import "crypto/rand"

// alphabet is the character set of API Gateway's connection and request ids.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// New returns an id in API Gateway's format: 15 alphanumeric characters and
// a trailing '=' (e.g. "L0SM9cOFvHcCIhw="). HTTP API request ids (also the
// apigw-requestid header), WebSocket connection ids, request ids and
// extended request ids all look like this.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:15]) // crypto/rand.Read never fails (Go 1.24+)
	for i := range 15 {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	b[15] = '='
	return string(b[:])
}
