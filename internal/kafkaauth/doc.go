// Package kafkaauth provides the credentials streamd presents to Kafka brokers: secrets read from an
// environment variable or a file, and OAUTHBEARER tokens read from a file or fetched from an OAuth 2
// client-credentials token endpoint. The config package turns them into franz-go SASL mechanisms.
//
// Every credential is read when the client authenticates, not once at start-up, so that a rotated
// secret takes effect on the next connection without a restart: a secret file is read again at
// every authentication (it is small), a token file when its modification time or size changed, and
// a token from an endpoint is fetched again once 80% of its lifetime has passed, before it expires
// (Kafka's own client refreshes at the same point, sasl.login.refresh.window.factor). No goroutine
// refreshes in the background: franz-go asks for credentials whenever it opens a connection or
// re-authenticates one, and that is when a token must be fresh.
//
// Secrets never appear in an error or a String: errors say where a secret comes from (the variable's
// name, the file's path, the endpoint's address) and never what it holds. A token endpoint's error
// answer is reduced to its OAuth error code and description, with the client secret cut out should
// the endpoint echo it.
//
// Every type is safe for concurrent use: franz-go authenticates connections to several brokers at
// once.
package kafkaauth
