package wsgw

import "crypto/rand"

// idAlphabet is the character set of API Gateway's connection and request ids.
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newID returns an id in API Gateway's format: 15 alphanumeric characters
// and a trailing '=' (e.g. "L0SM9cOFvHcCIhw="). Connection ids, request ids
// and extended request ids all look like this.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:15]) // crypto/rand.Read never fails (Go 1.24+)
	for i := range 15 {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	b[15] = '='
	return string(b[:])
}
