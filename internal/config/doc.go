// Package config is reqplane's only reader of the environment.
//
// Load turns the environment variables of the Dynamo wire spec (§8) and reqplane's extensions into a
// typed [Config]: durations are [time.Duration], ports are ints, hosts are resolved into a bind host
// and an advertise host per listener. It also records, for every variable, the effective value and
// where it came from (the environment, a default, or derived from another variable) so the
// `reqplane config` command can show operators what a process will really do.
//
// A bad value never falls back to a default: Load collects every problem, each naming the variable,
// the value and what is accepted, and returns them together (errors.Join). Every such error is a
// [*VarError] and matches [ErrInvalid] with errors.Is.
//
// No other package may call os.Getenv, os.LookupEnv or os.Environ; a test in this package enforces
// it across the repository.
package config
