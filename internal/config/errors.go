package config

import (
	"errors"
	"fmt"
)

// ErrInvalid matches (errors.Is) every configuration error Load returns.
var ErrInvalid = errors.New("invalid configuration")

// VarError is one problem with one variable. Its text names the variable, its value and what is
// accepted, e.g. DYN_REQUEST_PLANE="bogus": must be a comma-separated list of nats, http, http2, tcp
type VarError struct {
	Name string
	// Value is the value found, masked for secrets; meaningless when Unset.
	Value string
	// Unset is true when the problem is with the variable's absence (e.g. a missing partner variable
	// or an address that could not be auto-detected).
	Unset bool
	// Reason says what is wrong and what is accepted.
	Reason string
	// Err is the underlying cause, if any (e.g. listing the network interfaces failed).
	Err error
}

func (e *VarError) Error() string {
	if e.Unset {
		return fmt.Sprintf("%s (unset): %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("%s=%q: %s", e.Name, e.Value, e.Reason)
}

// Is makes every VarError match ErrInvalid.
func (e *VarError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying cause, if any.
func (e *VarError) Unwrap() error { return e.Err }
