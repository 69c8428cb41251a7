// Package envconfig reads a Lambda function's settings from its
// environment. Functions read them once, in main, and refuse to start on a
// bad value, so a misconfigured deployment fails at its first cold start
// with a message naming the variable instead of misbehaving later.
package envconfig

import (
	"fmt"
	"os"
	"strconv"
)

// Required returns the variable's value, or an error when it is unset or empty.
func Required(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("%s is required", name)
	}
	return v, nil
}

// PositiveInt returns the variable as a positive integer, or 0 when it is
// unset so that the caller's default applies.
func PositiveInt(name string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s must be a positive integer, got %q", name, v)
	}
	return n, nil
}
