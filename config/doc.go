// Package config reads pipeline config files: YAML, decoded strictly, validated whole, and compiled
// into the stream package's Pipeline and Config, the same API a Go user builds by hand.
//
// Decoding walks the YAML node tree against the config structs itself, instead of leaving it to the
// YAML library, so that every error can name its key path and line ("kafka.commit_interval (line 5):
// "100 millis" is not a duration") and an unknown key can suggest the known one it resembles. It
// collects every problem rather than stopping at the first, so a user fixes a file in one pass.
//
// Units are written out the way Go and Kafka users write them (see internal/units): durations like
// 100ms or 7d, sizes like 64KiB, rates like 5000/s. Values may reference the environment with
// ${NAME} or ${NAME:-default}. Secrets are never in the file: they are read from the environment or
// from files (kafka.sasl.password_env or password_file; the OAuth client secret likewise), when
// the client authenticates (see internal/kafkaauth), and no message shows them. The admin token
// (admin.token_env or admin.token_file) is checked at start and, from a file, read again by the
// admin server when the file changes.
//
// docs/config.md is the reference of every key; a test fails when a key is missing from it.
package config
